//! Context-switch tests: fresh contexts start, arguments flow, non-volatile registers survive.

use spindle_arch::context;

fn aligned_top(stack: &mut [u8]) -> usize {
    (stack.as_mut_ptr() as usize + stack.len()) & !15
}

#[test]
fn callee_saved_registers_survive_a_switch_through_a_scrambler() {
    let mut stack = vec![0u8; 64 * 1024];
    assert_eq!(
        spindle_arch::check_register_preservation(&mut stack, 3),
        Ok(())
    );
}

#[test]
fn a_fresh_context_starts_with_its_callee_saved_registers_cleared() {
    let mut stack = vec![0u8; 64 * 1024];
    assert_eq!(
        spindle_arch::check_fresh_context_registers(&mut stack),
        Ok(()),
        "the OR of the callee-saved registers a fresh context found"
    );
}

struct Ping {
    main_sp: usize,
    task_sp: usize,
    received: Vec<usize>,
}

extern "C" fn echo_entry(mut arg: usize, data: usize) -> ! {
    let ping = data as *mut Ping;
    loop {
        // SAFETY: the test keeps `ping` alive while this context can run; only one side runs.
        unsafe {
            (*ping).received.push(arg);
            arg = context::spindle_switch_context(&mut (*ping).task_sp, (*ping).main_sp, arg * 10);
        }
    }
}

#[test]
fn switch_passes_arguments_both_ways() {
    let mut stack = vec![0u8; 64 * 1024];
    let mut ping = Box::new(Ping {
        main_sp: 0,
        task_sp: 0,
        received: Vec::new(),
    });
    let data = &mut *ping as *mut Ping as usize;
    // SAFETY: stack owned by the test and outlives the context.
    ping.task_sp = unsafe { context::init_stack(aligned_top(&mut stack), echo_entry, data) };
    for value in 1..=5 {
        let resume = ping.task_sp;
        // SAFETY: resume is the echo context's stack pointer; it switches back to main_sp.
        let answer = unsafe { context::spindle_switch_context(&mut ping.main_sp, resume, value) };
        assert_eq!(answer, value * 10);
    }
    assert_eq!(ping.received, vec![1, 2, 3, 4, 5]);
}

extern "C" fn deep_sum(data: usize) {
    let cell = data as *mut (u64, u64);
    fn recurse(n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            n + core::hint::black_box(recurse(n - 1))
        }
    }
    // SAFETY: the caller passes a valid (input, output) pair that outlives the call.
    unsafe { (*cell).1 = recurse((*cell).0) };
}

#[test]
fn call_on_stack_runs_on_the_given_stack_and_comes_back() {
    let mut segment = vec![0u8; 256 * 1024];
    let top = aligned_top(&mut segment);
    let mut cell: (u64, u64) = (1000, 0);
    let before = context::stack_pointer();
    // SAFETY: segment is exclusively ours and large enough for 1000 small frames.
    unsafe { context::call_on_stack(top, deep_sum, &mut cell as *mut _ as usize) };
    assert_eq!(cell.1, 1000 * 1001 / 2);
    assert_eq!(context::stack_pointer(), before);
    assert!(
        segment.iter().any(|byte| *byte != 0),
        "the callee never touched the new stack"
    );
}
