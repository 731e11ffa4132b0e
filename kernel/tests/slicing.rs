//! Stack slicing on the host and in user-mode PowerPC64: sliced tasklets share one area per CPU.

use spindle::channel::Channel;
use spindle::tasklet::{self, Builder};
use std::sync::Arc;

#[test]
fn smoke_sliced_ping_pong() {
    let ch = Arc::new(Channel::<u64>::new());
    let mut handles = Vec::new();
    for i in 0..4u64 {
        let ch = ch.clone();
        handles.push(
            Builder::new()
                .sliced()
                .spawn(move || {
                    let local = [i; 16];
                    let r = &local;
                    let got = ch.receive().unwrap();
                    got + r[3]
                })
                .unwrap(),
        );
    }
    tasklet::schedule().unwrap();
    for h in &handles {
        assert!(h.is_blocked());
    }
    println!(
        "saved slices: {:?}",
        handles
            .iter()
            .map(|h| h.saved_slice_bytes())
            .collect::<Vec<_>>()
    );
    for i in 0..4u64 {
        ch.send(100 * i).unwrap();
    }
    tasklet::run().unwrap();
    for (i, h) in handles.iter().enumerate() {
        assert_eq!(h.result(), Some(Ok(101 * i as u64)));
    }
    println!("{:?}", tasklet::slice_stats());
}
