//! Dict tuning: validated parameters, the named profiles and the resize rules.

use core::fmt;

/// A ratio `num / den` of two small integers, as the `_PyDICT_*_NUM` / `_DENOM` macros of the
/// seed's tuned CPython (the seed: the Stackless-on-PS3 document Spindle was made from).
///
/// Kept to `u8` terms so a [`DictConfig`] (which every dict carries) stays small; 255ths are finer
/// than any load or growth anyone tunes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Fraction {
    num: u8,
    den: u8,
}

impl Fraction {
    /// `num / den`, unchecked: [`DictConfigBuilder::build`] validates every fraction it is given.
    pub const fn new(num: u8, den: u8) -> Self {
        Self { num, den }
    }

    /// Numerator.
    pub const fn num(self) -> u8 {
        self.num
    }

    /// Denominator.
    pub const fn den(self) -> u8 {
        self.den
    }

    /// `floor(n * num / den)`, saturating instead of overflowing.
    pub(crate) const fn of(self, n: usize) -> usize {
        let wide = n as u128 * self.num as u128 / self.den as u128;
        if wide > usize::MAX as u128 {
            usize::MAX
        } else {
            wide as usize
        }
    }
}

impl fmt::Display for Fraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// How entries are stored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Layout {
    /// CPython 2.7: one array of slots, each empty, a dummy, or a key and value; iteration follows
    /// slot order.
    Sparse,
    /// CPython 3.6+: a sparse array of small integers indexing a dense array of entries;
    /// iteration follows insertion order (see [`Dict::remove`](super::Dict::remove) for how a
    /// removal moves the newest entry).
    Compact,
    /// Sparse slots probed as bucketized two-choice hashing: a key sits in the emptier of two
    /// groups of slots its hash names (or, when both are full, in the next group after the second
    /// with room, which the second group's overflow count records), so a lookup reads at most
    /// two groups whatever the load. Removals leave no dummies. See the dict module's "Probing".
    TwoChoice,
}

/// Which table sizes are allowed, and so how a hash becomes a slot index.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Sizing {
    /// Powers of two, reduced with a mask (`hash & (size - 1)`), as CPython.
    PowerOfTwo,
    /// Any size, reduced with Lemire's multiply-shift (`(hash * size) >> 64`).
    Exact,
}

/// Width of the compact layout's indices.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IndexWidth {
    /// CPython's 1, 2, 4 or 8 bytes, the smallest that holds every index of the table.
    Bytes,
    /// The smallest number of bits that holds every index, bit-packed.
    Bits,
}

/// When a dict gives memory back after removals.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ShrinkPolicy {
    /// Only on an insert-triggered resize (which sizes for the live entries, as CPython 2.7's
    /// `dictresize(4 * used)` does) or an explicit `shrink_to_fit`.
    Never,
    /// Also after a removal that leaves the live entries below this fraction of the slots: the
    /// table is rebuilt at the size a resize would pick. Best effort: if that allocation fails,
    /// the removal still succeeds and the old table stays.
    BelowLoad(Fraction),
}

/// A configuration value outside what the dict can work with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConfigError {
    /// The small (initial and minimum) table must have at least one slot.
    SmallTableEmpty,
    /// Power-of-two sizing needs a power-of-two small table.
    SmallTableNotPowerOfTwo(u32),
    /// The small table is larger than 2^15 slots (reserve a larger table instead).
    SmallTableTooLarge(u32),
    /// A fraction with a zero denominator.
    ZeroDenominator,
    /// The max load must lie strictly between 0 and 1 (a table always keeps an empty slot, which
    /// is what ends every probe).
    LoadOutOfRange(Fraction),
    /// A growth factor must exceed 1 or a full table could not grow.
    GrowthNotAboveOne(Fraction),
    /// The shrink threshold must lie strictly between 0 and the max load, or a dict would shrink
    /// straight after growing.
    ShrinkOutOfRange(Fraction),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SmallTableEmpty => write!(f, "the small table needs at least one slot"),
            Self::SmallTableNotPowerOfTwo(n) => {
                write!(f, "small table of {n} slots is not a power of two")
            }
            Self::SmallTableTooLarge(n) => write!(f, "small table of {n} slots exceeds 2^15"),
            Self::ZeroDenominator => write!(f, "a fraction has a zero denominator"),
            Self::LoadOutOfRange(x) => write!(f, "max load {x} is not strictly between 0 and 1"),
            Self::GrowthNotAboveOne(x) => write!(f, "growth factor {x} does not exceed 1"),
            Self::ShrinkOutOfRange(x) => {
                write!(
                    f,
                    "shrink threshold {x} is not strictly between 0 and the max load"
                )
            }
        }
    }
}

/// Validated dict parameters; build one with [`DictConfig::builder`] or take a profile.
///
/// Sizes are in slots (sparse layout) or index slots (compact layout). The resize rules:
///
/// - An insert that adds a key resizes when, counting that key, the filled slots (live plus
///   dummies) reach the max load: `fill * den >= slots * num` (CPython 2.7's
///   `ma_fill*3 >= (ma_mask+1)*2` with the load as a parameter). The table therefore always keeps
///   an empty slot.
/// - [`Sizing::PowerOfTwo`] then picks CPython's `dictresize(growth * used)`: the smallest power of
///   two (at least the small table) above `floor(growth * used)`, where `used` counts the new key
///   and `growth` switches to the large growth above the threshold; and if that would still be at
///   max load, the next power of two.
/// - [`Sizing::Exact`] picks the smallest size (at least the small table) below whose max load
///   `max(floor(growth * used), used + 1)` entries fit, so `growth - 1` more of the live entries
///   can be added before the next resize.
///
/// Packed into 16 bytes: the small table is at most 2^15 slots, the shrink threshold's zero
/// denominator means [`ShrinkPolicy::Never`], and the three enums share a byte. A dict without a
/// table holds one; a dict with a table keeps it in the table's tail instead, as the profile's
/// number (one byte) or these 15 bytes (see the dict module's "Memory and speed").
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DictConfig {
    large_above: u32,
    small: u16,
    max_load: Fraction,
    growth: Fraction,
    large_growth: Fraction,
    shrink: Fraction,
    flags: u8,
}

const COMPACT: u8 = 1;
const EXACT: u8 = 2;
const BITS: u8 = 4;
const TWO_CHOICE: u8 = 8;

/// Two-choice tables of at most this many slots may fill completely, and larger ones hold at
/// least this many entries whatever the max load: a table this small is one group on any CPU,
/// which a lookup reads whole without needing an empty slot, and a dict of a few entries then
/// takes no more memory than their slots. Larger tables keep the max load, which leaves room for
/// the balanced placement.
pub(crate) const FULL_TABLE_SLOTS: usize = 8;

/// The parameters as given to the builder, before validation and packing.
#[derive(Clone, Copy, Debug)]
struct Params {
    small: u32,
    large_above: u32,
    max_load: Fraction,
    growth: Fraction,
    large_growth: Fraction,
    shrink: ShrinkPolicy,
    layout: Layout,
    sizing: Sizing,
    index_width: IndexWidth,
}

/// Builder for a [`DictConfig`]; [`build`](Self::build) validates. Starts from [`DictConfig::tight`].
#[derive(Clone, Copy, Debug)]
pub struct DictConfigBuilder(Params);

impl DictConfigBuilder {
    /// Slots of the small table: the size a dict starts with and never shrinks below (CPython's
    /// `PyDict_MINSIZE`).
    pub const fn small_table(mut self, slots: u32) -> Self {
        self.0.small = slots;
        self
    }

    /// Resize when the filled slots would reach `num / den` of the table.
    pub const fn max_load(mut self, num: u8, den: u8) -> Self {
        self.0.max_load = Fraction::new(num, den);
        self
    }

    /// Growth factor `num / den` at a resize (also used above the threshold unless
    /// [`growth_above`](Self::growth_above) says otherwise).
    pub const fn growth(mut self, num: u8, den: u8) -> Self {
        self.0.growth = Fraction::new(num, den);
        self.0.large_growth = self.0.growth;
        self
    }

    /// Growth factor `num / den` once the dict holds more than `entries` (2.7: 2x above 50000).
    pub const fn growth_above(mut self, entries: u32, num: u8, den: u8) -> Self {
        self.0.large_above = entries;
        self.0.large_growth = Fraction::new(num, den);
        self
    }

    /// When removals give memory back.
    pub const fn shrink(mut self, policy: ShrinkPolicy) -> Self {
        self.0.shrink = policy;
        self
    }

    /// Sparse or compact storage.
    pub const fn layout(mut self, layout: Layout) -> Self {
        self.0.layout = layout;
        self
    }

    /// Power-of-two or exact table sizes.
    pub const fn sizing(mut self, sizing: Sizing) -> Self {
        self.0.sizing = sizing;
        self
    }

    /// Index width of the compact layout (ignored by the sparse one).
    pub const fn index_width(mut self, width: IndexWidth) -> Self {
        self.0.index_width = width;
        self
    }

    /// Checks every parameter; usable in `const` items.
    pub const fn build(self) -> Result<DictConfig, ConfigError> {
        let c = self.0;
        if c.small == 0 {
            return Err(ConfigError::SmallTableEmpty);
        }
        if c.small > MAX_SMALL {
            return Err(ConfigError::SmallTableTooLarge(c.small));
        }
        if matches!(c.sizing, Sizing::PowerOfTwo) && !c.small.is_power_of_two() {
            return Err(ConfigError::SmallTableNotPowerOfTwo(c.small));
        }
        let fractions = [c.max_load, c.growth, c.large_growth];
        let mut i = 0;
        while i < fractions.len() {
            if fractions[i].den == 0 {
                return Err(ConfigError::ZeroDenominator);
            }
            i += 1;
        }
        if c.max_load.num == 0 || c.max_load.num >= c.max_load.den {
            return Err(ConfigError::LoadOutOfRange(c.max_load));
        }
        if c.growth.num <= c.growth.den {
            return Err(ConfigError::GrowthNotAboveOne(c.growth));
        }
        if c.large_growth.num <= c.large_growth.den {
            return Err(ConfigError::GrowthNotAboveOne(c.large_growth));
        }
        if let ShrinkPolicy::BelowLoad(s) = c.shrink {
            if s.den == 0 {
                return Err(ConfigError::ZeroDenominator);
            }
            // s < max_load, cross-multiplied.
            if s.num == 0
                || s.num as u32 * c.max_load.den as u32 >= c.max_load.num as u32 * s.den as u32
            {
                return Err(ConfigError::ShrinkOutOfRange(s));
            }
        }
        let flags = (matches!(c.layout, Layout::Compact) as u8 * COMPACT)
            | (matches!(c.layout, Layout::TwoChoice) as u8 * TWO_CHOICE)
            | (matches!(c.sizing, Sizing::Exact) as u8 * EXACT)
            | (matches!(c.index_width, IndexWidth::Bits) as u8 * BITS);
        Ok(DictConfig {
            large_above: c.large_above,
            small: c.small as u16,
            max_load: c.max_load,
            growth: c.growth,
            large_growth: c.large_growth,
            shrink: match c.shrink {
                ShrinkPolicy::Never => Fraction::new(0, 0),
                ShrinkPolicy::BelowLoad(s) => s,
            },
            flags,
        })
    }
}

/// The largest small table: it is allocated by the first insert, so anything larger is better
/// asked for with `try_reserve`.
const MAX_SMALL: u32 = 1 << 15;

/// Unwraps a profile's configuration at compile time.
const fn valid(result: Result<DictConfig, ConfigError>) -> DictConfig {
    match result {
        Ok(config) => config,
        Err(_) => panic!("a built-in dict profile is invalid"),
    }
}

impl DictConfig {
    /// A builder starting from [`DictConfig::tight`].
    pub const fn builder() -> DictConfigBuilder {
        DictConfigBuilder(Self::TIGHT)
    }

    /// A builder starting from this configuration.
    pub const fn to_builder(self) -> DictConfigBuilder {
        DictConfigBuilder(Params {
            small: self.small as u32,
            large_above: self.large_above,
            max_load: self.max_load,
            growth: self.growth,
            large_growth: self.large_growth,
            shrink: self.shrink(),
            layout: self.layout(),
            sizing: self.sizing(),
            index_width: self.index_width(),
        })
    }

    const TIGHT: Params = Params {
        small: 1,
        large_above: u32::MAX,
        max_load: Fraction::new(3, 4),
        growth: Fraction::new(3, 2),
        large_growth: Fraction::new(3, 2),
        shrink: ShrinkPolicy::Never,
        layout: Layout::Sparse,
        sizing: Sizing::PowerOfTwo,
        index_width: IndexWidth::Bytes,
    };

    /// CPython 2.7: sparse, small table 8, max load 2/3, growth 4x, 2x above 50000 entries.
    pub const fn cpython27() -> Self {
        valid(
            DictConfig::builder()
                .small_table(8)
                .max_load(2, 3)
                .growth(4, 1)
                .growth_above(50_000, 2, 1)
                .build(),
        )
    }

    /// The seed's tuned console build: sparse, small table 1, growth 1.5x, and the max load that
    /// reproduces its measured table, 3/4 (its source says 4/5, which does not; the reading is in
    /// `kernel/docs/dict-notes.md`).
    pub const fn tight() -> Self {
        valid(DictConfig::builder().build())
    }

    /// Tight, without the power-of-two sizes: exact table sizes, max load 7/8, growth 9/8.
    pub const fn exact() -> Self {
        valid(
            DictConfig::builder()
                .sizing(Sizing::Exact)
                .max_load(7, 8)
                .growth(9, 8)
                .build(),
        )
    }

    /// CPython 3.6+: compact, index table 8 with 1/2/4/8-byte indices, max load 2/3, growth 3x.
    pub const fn compact() -> Self {
        valid(
            DictConfig::builder()
                .layout(Layout::Compact)
                .small_table(8)
                .max_load(2, 3)
                .growth(3, 1)
                .build(),
        )
    }

    /// The smallest: compact with bit-packed indices, exact sizes, max load 7/8, growth 17/16.
    pub const fn exact_compact() -> Self {
        valid(
            DictConfig::builder()
                .layout(Layout::Compact)
                .sizing(Sizing::Exact)
                .index_width(IndexWidth::Bits)
                .max_load(7, 8)
                .growth(17, 16)
                .build(),
        )
    }

    /// Tight and fast: two-choice groups over exact sizes, max load 31/32, growth 11/10 (so a
    /// table is at least 7/8 full after growing: `hashbrown`'s max load).
    pub const fn lean() -> Self {
        valid(
            DictConfig::builder()
                .layout(Layout::TwoChoice)
                .sizing(Sizing::Exact)
                .max_load(31, 32)
                .growth(11, 10)
                .build(),
        )
    }

    /// Every named profile with its name, for tables and tests.
    pub const PROFILES: [(&'static str, DictConfig); 6] = [
        ("cpython27", Self::cpython27()),
        ("tight", Self::tight()),
        ("exact", Self::exact()),
        ("compact", Self::compact()),
        ("exact_compact", Self::exact_compact()),
        ("lean", Self::lean()),
    ];

    /// Slots of the small table.
    pub const fn small_table(&self) -> usize {
        self.small as usize
    }

    /// The max load.
    pub const fn max_load(&self) -> Fraction {
        self.max_load
    }

    /// The growth factor at or below the threshold.
    pub const fn growth(&self) -> Fraction {
        self.growth
    }

    /// The threshold (in entries) above which [`large_growth`](Self::large_growth) applies.
    pub const fn large_above(&self) -> usize {
        self.large_above as usize
    }

    /// The growth factor above the threshold.
    pub const fn large_growth(&self) -> Fraction {
        self.large_growth
    }

    /// The shrink policy.
    pub const fn shrink(&self) -> ShrinkPolicy {
        if self.shrink.den == 0 {
            ShrinkPolicy::Never
        } else {
            ShrinkPolicy::BelowLoad(self.shrink)
        }
    }

    /// The layout.
    pub const fn layout(&self) -> Layout {
        if self.flags & TWO_CHOICE != 0 {
            Layout::TwoChoice
        } else if self.flags & COMPACT != 0 {
            Layout::Compact
        } else {
            Layout::Sparse
        }
    }

    /// The sizing.
    pub const fn sizing(&self) -> Sizing {
        if self.flags & EXACT != 0 {
            Sizing::Exact
        } else {
            Sizing::PowerOfTwo
        }
    }

    /// The compact layout's index width.
    pub const fn index_width(&self) -> IndexWidth {
        if self.flags & BITS != 0 {
            IndexWidth::Bits
        } else {
            IndexWidth::Bytes
        }
    }

    /// Whether `fill` filled slots put a table of `slots` at or over the max load.
    pub(crate) fn at_max_load(&self, slots: usize, fill: usize) -> bool {
        fill > self.capacity_of(slots)
    }

    /// The most filled slots a table of `slots` holds below the max load (for two-choice
    /// tables at least [`FULL_TABLE_SLOTS`] of them; a capacity grows with the slots).
    pub(crate) fn capacity_of(&self, slots: usize) -> usize {
        let num = self.max_load.num as u128;
        let den = self.max_load.den as u128;
        let below = ((slots as u128 * num).saturating_sub(1) / den) as usize;
        if self.flags & TWO_CHOICE != 0 {
            below.max(slots.min(FULL_TABLE_SLOTS))
        } else {
            below
        }
    }

    /// Rounds `slots` up to a permitted size: at least the small table, a power of two if needed.
    fn permitted(&self, slots: usize) -> Option<usize> {
        let slots = slots.max(self.small_table());
        match self.sizing() {
            Sizing::PowerOfTwo => slots.checked_next_power_of_two(),
            Sizing::Exact => Some(slots),
        }
    }

    /// The smallest permitted size holding `entries` below the max load.
    pub(crate) fn size_for(&self, entries: usize) -> Option<usize> {
        if self.flags & TWO_CHOICE != 0 && (1..=FULL_TABLE_SLOTS).contains(&entries) {
            // Any table of at least `entries` slots holds them.
            return self.permitted(entries);
        }
        // entries * den < slots * num  <=>  slots > entries * den / num.
        let min = entries as u128 * self.max_load.den as u128 / self.max_load.num as u128 + 1;
        self.permitted(usize::try_from(min).ok()?)
    }

    /// The size a resize picks when an insert brings the live entries to `used`.
    pub(crate) fn grown_size(&self, used: usize) -> Option<usize> {
        let growth = if used > self.large_above() {
            self.large_growth
        } else {
            self.growth
        };
        let target = growth.of(used);
        match self.sizing() {
            Sizing::PowerOfTwo => {
                // dictresize(minused): the smallest power of two strictly above minused.
                let above = self.permitted(target.checked_add(1)?)?;
                let fits = self.size_for(used)?;
                Some(above.max(fits))
            }
            Sizing::Exact => self.size_for(target.max(used.checked_add(1)?)),
        }
    }

    /// Whether a remove that leaves `used` live entries in `slots` slots should shrink the table.
    pub(crate) fn wants_shrink(&self, slots: usize, used: usize) -> bool {
        match self.shrink() {
            ShrinkPolicy::Never => false,
            ShrinkPolicy::BelowLoad(s) => {
                slots > self.small_table()
                    && (used as u128 * s.den as u128) < slots as u128 * s.num as u128
            }
        }
    }
}

/// The tag byte of a tail whose configuration is not a named profile (its packed bytes precede
/// the tag); otherwise the tag's low bits are the profile's place in [`DictConfig::PROFILES`].
const CUSTOM: u8 = 0x80;
/// Where the tag byte keeps the configuration's flags (four bits, below [`CUSTOM`]).
const FLAGS_SHIFT: u32 = 3;
/// The tag byte's bits that number a named profile.
const PROFILE_BITS: u8 = (1 << FLAGS_SHIFT) - 1;
const _: () = assert!(DictConfig::PROFILES.len() <= PROFILE_BITS as usize + 1);
/// Bytes a configuration that is not a profile packs into.
const PACKED: usize = 15;
/// The most bytes a tail takes: a packed configuration, the tag, and the index bits.
const MAX_TAIL: usize = PACKED + 2;

/// A configuration as a table stores it after its slots (see the dict module's "Memory and
/// speed"): the packed configuration unless it is a named profile, a tag byte (profile number or
/// [`CUSTOM`], and the flags), and the compact layout's index bits (0 for the sparse layout).
pub(crate) struct Tail {
    bytes: [u8; MAX_TAIL],
    len: usize,
}

impl Tail {
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Whether the tail that ends `bytes` says exact sizing. (Neither this nor [`tail_bits`] can
/// panic: lookups that use them stay free of side effects.)
#[inline]
pub(crate) fn tail_exact(bytes: &[u8]) -> bool {
    let tag = bytes.get(bytes.len().wrapping_sub(2)).copied().unwrap_or(0);
    tag & (EXACT << FLAGS_SHIFT) != 0
}

/// The index bits that end a table's byte array.
#[inline]
pub(crate) fn tail_bits(bytes: &[u8]) -> u32 {
    bytes.last().map_or(64, |&bits| u32::from(bits))
}

/// The tail that ends `bytes` (a table's control or index bytes), found from its tag.
#[inline]
pub(crate) fn tail_of(bytes: &[u8]) -> &[u8] {
    let len = if bytes[bytes.len() - 2] & CUSTOM == 0 {
        2
    } else {
        MAX_TAIL
    };
    &bytes[bytes.len() - len..]
}

/// Whether the configuration of `tail` (a whole tail) has a shrink policy.
#[inline]
pub(crate) fn tail_shrinks(tail: &[u8]) -> bool {
    let tag = tail[tail.len() - 2];
    if tag & CUSTOM == 0 {
        // Named profiles: known at compile time.
        const SHRINKS: [bool; DictConfig::PROFILES.len()] = {
            let mut shrinks = [false; DictConfig::PROFILES.len()];
            let mut i = 0;
            while i < shrinks.len() {
                shrinks[i] = DictConfig::PROFILES[i].1.shrink.den != 0;
                i += 1;
            }
            shrinks
        };
        SHRINKS[usize::from(tag & PROFILE_BITS)]
    } else {
        // The packed shrink fraction's denominator: zero means never.
        tail[13] != 0
    }
}

impl DictConfig {
    /// This configuration's place in [`PROFILES`](Self::PROFILES), if it is a named profile.
    fn profile_number(&self) -> Option<usize> {
        Self::PROFILES.iter().position(|(_, p)| p == self)
    }

    /// The tail a table of this configuration ends with, for compact indices of `bits` bits.
    pub(crate) fn tail(&self, bits: u32) -> Tail {
        let mut bytes = [0; MAX_TAIL];
        let flags = self.flags << FLAGS_SHIFT;
        let len = match self.profile_number() {
            Some(number) => {
                bytes[0] = flags | number as u8;
                0
            }
            None => {
                bytes[..4].copy_from_slice(&self.large_above.to_le_bytes());
                bytes[4..6].copy_from_slice(&self.small.to_le_bytes());
                let fractions = [self.max_load, self.growth, self.large_growth, self.shrink];
                for (i, f) in fractions.iter().enumerate() {
                    bytes[6 + 2 * i] = f.num;
                    bytes[7 + 2 * i] = f.den;
                }
                bytes[14] = self.flags;
                bytes[PACKED] = flags | CUSTOM;
                PACKED
            }
        };
        bytes[len + 1] = bits as u8;
        Tail {
            bytes,
            len: len + 2,
        }
    }

    /// The configuration of a tail (exactly the bytes [`tail`](Self::tail) made).
    pub(crate) fn from_tail(tail: &[u8]) -> Self {
        let tag = tail[tail.len() - 2];
        if tag & CUSTOM == 0 {
            /// The named profiles' configurations, for indexing at run time.
            static CONFIGS: [DictConfig; DictConfig::PROFILES.len()] = {
                let mut configs = [DictConfig::tight(); DictConfig::PROFILES.len()];
                let mut i = 0;
                while i < configs.len() {
                    configs[i] = DictConfig::PROFILES[i].1;
                    i += 1;
                }
                configs
            };
            return CONFIGS[usize::from(tag & PROFILE_BITS)];
        }
        let b = tail;
        let fraction = |i: usize| Fraction::new(b[6 + 2 * i], b[7 + 2 * i]);
        DictConfig {
            large_above: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            small: u16::from_le_bytes([b[4], b[5]]),
            max_load: fraction(0),
            growth: fraction(1),
            large_growth: fraction(2),
            shrink: fraction(3),
            flags: b[14],
        }
    }
}

impl fmt::Debug for DictConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DictConfig")
            .field("small_table", &self.small)
            .field("max_load", &format_args!("{}", self.max_load))
            .field("growth", &format_args!("{}", self.growth))
            .field("large_above", &self.large_above)
            .field("large_growth", &format_args!("{}", self.large_growth))
            .field("shrink", &self.shrink())
            .field("layout", &self.layout())
            .field("sizing", &self.sizing())
            .field("index_width", &self.index_width())
            .finish()
    }
}

impl Default for DictConfig {
    /// [`DictConfig::tight`].
    fn default() -> Self {
        Self::tight()
    }
}
