//! The echo demo over the mock network (filled in later).
