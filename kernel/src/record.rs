//! Records: named-field tuples generated at compile time (the seed's namedtuple without exec).
