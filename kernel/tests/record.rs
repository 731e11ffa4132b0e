//! Records: what namedtuple offers, generated at compile time.

use spindle::record;
use spindle::record::{FieldAt, Record};

record! {
    /// A point.
    #[derive(Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Point { x: i32, y: i32 }
}

record! {
    /// urlparse's result, the namedtuple that broke on the seed's console (the PS3 of the seed,
    /// the Stackless document Spindle was made from, whose Python had no compiler for `exec`).
    #[derive(Clone, PartialEq)]
    pub struct SplitResult {
        scheme: &'static str,
        netloc: &'static str,
        /// Fields keep their doc comments.
        pub path: String,
        query: Option<u16>,
        fragment: (),
    }
}

record! {
    struct Single { only: u8, }
}

#[test]
fn repr_is_pythons() {
    assert_eq!(format!("{:?}", Point::new(1, -2)), "Point(x=1, y=-2)");
    let url = SplitResult::new("http", "example.com", "/a".into(), Some(8), ());
    assert_eq!(
        format!("{url:?}"),
        r#"SplitResult(scheme="http", netloc="example.com", path="/a", query=Some(8), fragment=())"#
    );
    assert_eq!(format!("{:?}", Single::new(3)), "Single(only=3)");
}

#[test]
fn field_names_and_lookup_by_name() {
    assert_eq!(Point::FIELDS, ["x", "y"]);
    assert_eq!(Point::NAME, "Point");
    assert_eq!(
        SplitResult::FIELDS,
        ["scheme", "netloc", "path", "query", "fragment"]
    );
    assert_eq!(Single::FIELDS, ["only"]);
    assert_eq!(SplitResult::index_of("query"), Some(3));
    assert_eq!(SplitResult::index_of("port"), None);
    let p = Point::new(4, 5);
    assert_eq!(format!("{:?}", p.get_by_name("y").unwrap()), "y=5");
    assert!(p.get_by_name("z").is_none());
}

#[test]
fn index_access_typed_and_dynamic() {
    let mut p = Point::new(7, 8);
    assert_eq!((*p.at::<0>(), *p.at::<1>()), (7, 8));
    *p.at_mut::<1>() += 1;
    assert_eq!(p.y, 9);
    let url = SplitResult::new("ftp", "host", "/".into(), None, ());
    let path: &String = url.at::<2>();
    assert_eq!(path, "/");
    assert_eq!(<SplitResult as FieldAt<3>>::field(&url), &None);
    let f = url.get(1).unwrap();
    assert_eq!(
        (f.name, format!("{:?}", f.value)),
        ("netloc", "\"host\"".to_string())
    );
    assert!(url.get(5).is_none());
    let all: Vec<String> = url.fields().map(|f| format!("{f:?}")).collect();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0], "scheme=\"ftp\"");
}

#[test]
fn tuples_both_ways() {
    let p = Point::from_tuple((1, 2));
    assert_eq!(p, Point { x: 1, y: 2 });
    assert_eq!(p.into_tuple(), (1, 2));
    let t: (i32, i32) = p.into();
    assert_eq!(t, (1, 2));
    assert_eq!(Point::from((3, 4)), Point::new(3, 4));
    let s: (u8,) = Single::new(9).into_tuple();
    assert_eq!(s, (9,));
}

#[test]
fn replace_leaves_the_original() {
    let p = Point::new(1, 2);
    let q = p.with::<1>(20);
    assert_eq!((p, q), (Point::new(1, 2), Point::new(1, 20)));
    let url = SplitResult::new("http", "a", "/".into(), None, ());
    let moved = url.clone().with::<2>("/b".into()).with::<3>(Some(1));
    assert_eq!(moved.path, "/b");
    assert_eq!(moved.query, Some(1));
    assert_eq!(url.path, "/");
    assert_eq!(SplitResult { netloc: "b", ..url }.netloc, "b");
}

#[test]
fn records_are_usable_as_dict_keys() {
    let mut d: spindle::dict::Dict<Point, &str> = spindle::dict::Dict::new();
    d.insert(Point::new(0, 0), "origin");
    assert_eq!(d.get(&Point::new(0, 0)), Some(&"origin"));
    assert_eq!(format!("{d:?}"), r#"{Point(x=0, y=0): "origin"}"#);
}
