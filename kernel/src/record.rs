//! Records: named-field tuples generated at compile time (namedtuple without exec,
//! which the seed, the Stackless-on-PS3 document Spindle was made from, needed).
//!
//! ```
//! use spindle::record;
//! use spindle::record::Record;
//!
//! record! {
//!     /// A point on the screen.
//!     #[derive(Clone, Copy, PartialEq)]
//!     pub struct Point { x: i32, y: i32 }
//! }
//!
//! let p = Point::new(1, 2);
//! assert_eq!(format!("{p:?}"), "Point(x=1, y=2)");        // repr
//! assert_eq!(Point::FIELDS, ["x", "y"]);                  // _fields
//! assert_eq!(p.into_tuple(), (1, 2));                      // tuple(p)
//! assert_eq!(Point::from_tuple((1, 2)), p);                // Point._make
//! assert_eq!(*p.at::<1>(), 2);                             // p[1], typed
//! assert_eq!(format!("{:?}", p.get(0).unwrap()), "x=1");   // p[0], dynamic
//! assert_eq!(p.with::<0>(5), Point::new(5, 2));            // p._replace(x=5)
//! assert_eq!(Point { x: 5, ..p }, Point::new(5, 2));       // the same, by name
//! ```
//!
//! CPython's `collections.namedtuple` builds a class by formatting source text and running
//! `exec` on it, which broke on the seed's console once the compiler was stripped out. The
//! [`record!`](crate::record!) macro generates the same things at compile time instead (each
//! line above names its namedtuple counterpart).
//!
//! `macro_rules!` cannot paste identifiers together, so the update by name is Rust's struct
//! update syntax (`Point { x: 5, ..p }`) rather than a generated `with_x`; `with::<I>` is the
//! typed update by index. Generic records are not supported.
#![forbid(unsafe_code)]

use core::fmt;

/// What every [`record!`](crate::record!) type provides.
pub trait Record: Sized {
    /// The type's name.
    const NAME: &'static str;
    /// Field names in declaration order (namedtuple's `_fields`).
    const FIELDS: &'static [&'static str];
    /// The fields as a tuple, in declaration order.
    type Tuple;

    /// The fields as a tuple.
    fn into_tuple(self) -> Self::Tuple;

    /// A record from a tuple of its fields (namedtuple's `_make`).
    fn from_tuple(tuple: Self::Tuple) -> Self;

    /// Field `index` as a name and a printable value (namedtuple's `p[i]`, untyped).
    fn get(&self, index: usize) -> Option<FieldRef<'_>>;

    /// Position of the field called `name`.
    fn index_of(name: &str) -> Option<usize> {
        Self::FIELDS.iter().position(|field| *field == name)
    }

    /// The field called `name` (namedtuple's `getattr`).
    fn get_by_name(&self, name: &str) -> Option<FieldRef<'_>> {
        self.get(Self::index_of(name)?)
    }

    /// Every field in order (namedtuple's `_asdict`).
    fn fields(&self) -> impl Iterator<Item = FieldRef<'_>> {
        (0..Self::FIELDS.len()).filter_map(|i| self.get(i))
    }
}

/// Typed access to field `I` of a record (namedtuple's `p[I]`).
pub trait FieldAt<const I: usize>: Sized {
    /// The field's type.
    type Type;

    /// The field.
    fn field(&self) -> &Self::Type;

    /// The field, mutable.
    fn field_mut(&mut self) -> &mut Self::Type;

    /// The record with this field replaced (namedtuple's `_replace`).
    fn with_field(mut self, value: Self::Type) -> Self {
        *self.field_mut() = value;
        self
    }
}

/// One field of a record: its name and value, printing as `name=value`.
#[derive(Clone, Copy)]
pub struct FieldRef<'a> {
    /// The field's name.
    pub name: &'static str,
    /// The field's value.
    pub value: &'a dyn fmt::Debug,
}

impl fmt::Debug for FieldRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}", self.name, self.value)
    }
}

/// Prints a record as Python's namedtuple repr: `Point(x=1, y=2)`.
pub fn debug_record<R: Record>(record: &R, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(R::NAME)?;
    f.write_str("(")?;
    for (i, field) in record.fields().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        fmt::Debug::fmt(&field, f)?;
    }
    f.write_str(")")
}

/// Declares a record: a struct with named fields plus index access, tuple conversion, field
/// names, typed replacement and a Python-like `Debug` ([`Record`], [`FieldAt`]).
///
/// Attributes and doc comments pass through to the struct and its fields; every field is public,
/// as a namedtuple's are (writing `pub` is allowed).
#[macro_export]
macro_rules! record {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $_vis:vis $field:ident : $ty:ty ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $(
                #[doc = concat!("Field `", stringify!($field), "`.")]
                $(#[$fmeta])*
                pub $field: $ty
            ),+
        }

        impl $name {
            /// A record from its fields, in declaration order.
            #[allow(clippy::too_many_arguments)]
            pub const fn new($($field: $ty),+) -> Self {
                Self { $($field),+ }
            }

            /// Field `I`, typed.
            pub fn at<const I: usize>(&self) -> &<Self as $crate::record::FieldAt<I>>::Type
            where
                Self: $crate::record::FieldAt<I>,
            {
                <Self as $crate::record::FieldAt<I>>::field(self)
            }

            /// Field `I`, typed and mutable.
            pub fn at_mut<const I: usize>(&mut self) -> &mut <Self as $crate::record::FieldAt<I>>::Type
            where
                Self: $crate::record::FieldAt<I>,
            {
                <Self as $crate::record::FieldAt<I>>::field_mut(self)
            }

            /// This record with field `I` replaced.
            pub fn with<const I: usize>(self, value: <Self as $crate::record::FieldAt<I>>::Type) -> Self
            where
                Self: $crate::record::FieldAt<I>,
            {
                <Self as $crate::record::FieldAt<I>>::with_field(self, value)
            }
        }

        impl $crate::record::Record for $name {
            const NAME: &'static str = stringify!($name);
            const FIELDS: &'static [&'static str] = &[$(stringify!($field)),+];
            type Tuple = ($($ty,)+);

            fn into_tuple(self) -> Self::Tuple {
                ($(self.$field,)+)
            }

            fn from_tuple(($($field,)+): Self::Tuple) -> Self {
                Self { $($field),+ }
            }

            fn get(&self, index: usize) -> Option<$crate::record::FieldRef<'_>> {
                let values: &[&dyn ::core::fmt::Debug] = &[$(&self.$field),+];
                Some($crate::record::FieldRef {
                    name: <Self as $crate::record::Record>::FIELDS.get(index)?,
                    value: *values.get(index)?,
                })
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                $crate::record::debug_record(self, f)
            }
        }

        impl ::core::convert::From<$name> for ($($ty,)+) {
            fn from(record: $name) -> Self {
                $crate::record::Record::into_tuple(record)
            }
        }

        impl ::core::convert::From<($($ty,)+)> for $name {
            fn from(tuple: ($($ty,)+)) -> Self {
                <$name as $crate::record::Record>::from_tuple(tuple)
            }
        }

        $crate::__record_field_at!($name; 0; $($field : $ty),+);
    };
}

/// Implements [`FieldAt`] for each field of a [`record!`](crate::record!), counting indices.
#[doc(hidden)]
#[macro_export]
macro_rules! __record_field_at {
    ($name:ident; $index:expr; ) => {};
    ($name:ident; $index:expr; $field:ident : $ty:ty $(, $rest:ident : $rty:ty)*) => {
        impl $crate::record::FieldAt<{ $index }> for $name {
            type Type = $ty;

            fn field(&self) -> &$ty {
                &self.$field
            }

            fn field_mut(&mut self) -> &mut $ty {
                &mut self.$field
            }
        }

        $crate::__record_field_at!($name; $index + 1; $($rest : $rty),*);
    };
}
