//! A mock network driver: in-memory hosts and ports, the console select quirk, scripted faults.
