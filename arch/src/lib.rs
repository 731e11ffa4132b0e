//! Spindle's CPU layer: one module per CPU behind one small contract.
//!
//! Every CPU module provides the context switch used by tasklets, re-exported here as
//! [`context`] for the running CPU. What it must provide, item by item (the switches,
//! `init_stack`, `call_on_stack`, `stack_pointer`, the frame sizes and the register-preservation
//! self-test), is the [`contract`], checked at compile time for every CPU. The bare-metal
//! PowerPC64 module adds boot, exception vectors, the decrementer, the timebase and PMC5.
//!
//! Porting Spindle to another CPU or board: see the porting guide, `arch/PORTING.md` (what a
//! CPU port provides, what the firmware or board provides, how preemption works).
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod contract;
#[cfg(target_arch = "powerpc64")]
pub mod powerpc64;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

#[cfg(not(any(target_arch = "powerpc64", target_arch = "x86_64")))]
compile_error!("spindle-arch: support for this architecture is not implemented");

/// The running CPU's context switch: the items of the [`contract`].
#[cfg(target_arch = "powerpc64")]
pub use powerpc64::context;
/// The running CPU's context switch: the items of the [`contract`].
#[cfg(target_arch = "x86_64")]
pub use x86_64::context;

/// Runs the register-preservation probe of the running CPU's `context::selftest` `rounds` times:
/// every non-volatile register is filled with sentinels, the CPU switches to a scrambler context
/// (on `scratch_stack`) that overwrites them all and switches back, and the sentinels are
/// compared. Returns the round and the mismatch mask (per `spindle_probe_preservation`) of the
/// first failure.
pub fn check_register_preservation(
    scratch_stack: &mut [u8],
    rounds: usize,
) -> Result<(), (usize, u64)> {
    #[repr(C)]
    struct Pair {
        probe_sp: usize,
        scrambler_sp: usize,
    }

    extern "C" fn scrambler(_arg: usize, data: usize) -> ! {
        let pair = data as *mut Pair;
        // SAFETY: `pair` outlives every switch into this context (the probe below owns it until
        // it returns, and never resumes the scrambler afterwards).
        unsafe {
            context::selftest::spindle_scramble_and_switch(
                core::ptr::addr_of_mut!((*pair).scrambler_sp),
                core::ptr::addr_of!((*pair).probe_sp),
            )
        }
    }

    let top = (scratch_stack.as_mut_ptr() as usize + scratch_stack.len()) & !15;
    let mut pair = Pair {
        probe_sp: 0,
        scrambler_sp: 0,
    };
    let data = &mut pair as *mut Pair as usize;
    // SAFETY: the scratch stack is borrowed exclusively for this call and outlives the context.
    pair.scrambler_sp = unsafe { context::init_stack(top, scrambler, data) };
    for round in 0..rounds {
        let resume = pair.scrambler_sp;
        // SAFETY: `resume` is the scrambler's fresh or suspended stack pointer.
        let mask =
            unsafe { context::selftest::spindle_probe_preservation(&mut pair.probe_sp, resume) };
        if mask != 0 {
            return Err((round, mask));
        }
    }
    Ok(())
}

/// Checks that a fresh context starts with its callee-saved registers cleared (the
/// `init_stack` contract), even though the context that first switches to it holds sentinels in
/// all of them: runs `context::selftest::spindle_report_fresh_registers` as the entry of a fresh
/// context on `scratch_stack`, switched to by the probe. Returns the OR of the registers the
/// fresh context found (`Err`, when not all zero), or the probe's mismatch mask shifted left by
/// 32 if the switch back lost one of the probe's.
pub fn check_fresh_context_registers(scratch_stack: &mut [u8]) -> Result<(), u64> {
    /// The report's words: what it found, its own suspended context, the probe's.
    #[repr(C)]
    struct Report {
        registers: u64,
        reporter_sp: usize,
        probe_sp: usize,
    }

    let top = (scratch_stack.as_mut_ptr() as usize + scratch_stack.len()) & !15;
    let mut report = Report {
        registers: u64::MAX,
        reporter_sp: 0,
        probe_sp: 0,
    };
    let data = &mut report as *mut Report as usize;
    let report_entry: unsafe extern "C" fn(usize, usize) -> ! =
        context::selftest::spindle_report_fresh_registers;
    // SAFETY: the same signature and ABI; only the trampoline calls it, with the `data` given
    // here. The scratch stack is borrowed exclusively for this call and outlives the context,
    // which is never resumed after it switches back.
    let fresh = unsafe {
        let entry: context::EntryFn = core::mem::transmute(report_entry);
        context::init_stack(top, entry, data)
    };
    // SAFETY: `fresh` is a fresh context that switches back to the probe through the word the
    // probe saves itself in (`report.probe_sp`, alive for the call).
    let mask =
        unsafe { context::selftest::spindle_probe_preservation(&mut report.probe_sp, fresh) };
    match (mask, report.registers) {
        (0, 0) => Ok(()),
        (0, found) => Err(found),
        (mask, _) => Err(mask << 32),
    }
}
