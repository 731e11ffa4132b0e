//! Tight dict: a CPython-style open-addressing hash table tunable for fixed memory.
