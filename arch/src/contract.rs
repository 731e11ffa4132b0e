//! The arch contract: what every CPU port's `context` module provides to the portable kernel,
//! item by item, checked at compile time.
//!
//! A CPU port is one module of this crate (`powerpc64`, `x86_64`) whose `context` submodule the
//! crate root re-exports as [`crate::context`]. The kernel uses nothing else of a port: boot code,
//! vectors, timers and per-CPU blocks are the board's business (see the porting guide,
//! `arch/PORTING.md`). Each item below is a type (or, for the two constants, a heading here) that
//! says what the port's item must do, what it must preserve and what its callers promise; the
//! `const` checks at the end of this file bind the running CPU's `context` module to these
//! types, so a port that lacks an item, or gives one another signature, does not compile. Every
//! port is checked in the builds that compile it (x86_64 on the host; PowerPC64 in user mode
//! and bare metal).
//!
//! # The model
//! A suspended context is one word, its stack pointer. Everything the port needs to resume it
//! lies on its own stack, within `SWITCH_FRAME_BYTES` of that pointer (above it, or below it
//! where the ABI protects an area below the stack pointer from interrupts, as PowerPC64 ELFv2
//! does). The kernel keeps these words in tasklet control blocks and hands them back unchanged;
//! it never reads the stacks. Contexts switch with interrupts enabled, except the one switch
//! made from the timer interrupt ([`SwitchFromInterrupt`]).
//!
//! Registers that name the CPU or thread rather than the context (r13 on PowerPC64, the `fs`
//! base on x86_64) are never saved or restored by a switch: code resumed on a CPU must see that
//! CPU's value.
//!
//! What a switch must preserve is the C ABI's callee-saved state of the CPU, the stack pointer
//! included (PowerPC64 ELFv2: r1, r2, r14-r31, f14-f31, v20-v31, CR2-CR4, VRSAVE and FPSCR;
//! x86_64 System V: rsp, rbx, rbp, r12-r15). Floating-point control state may instead be
//! declared shared by all contexts of a CPU (x86_64 does so for MXCSR and the x87 control word,
//! like corosensei); a port says which. How it preserves them is the port's choice: both ports
//! declare in the switch's inline assembly as clobbered every callee-saved register the compiler
//! may allocate, so the compiler saves exactly the live ones (once per enclosing function, not
//! per switch), and save in the switch frame only what the compiler cannot be told about
//! (registers LLVM reserves, special registers). The register-preservation self-test
//! ([`ProbePreservation`], [`ScrambleAndSwitch`], driven by
//! [`check_register_preservation`](crate::check_register_preservation)) checks the promise on
//! every tier.
//!
//! # Constants
//! - `INITIAL_FRAME_BYTES: usize`: bytes [`InitStack`] writes below a fresh stack's top. The
//!   kernel counts them in the smallest stack it gives a tasklet (`tasklet::MIN_STACK_BYTES`).
//! - `SWITCH_FRAME_BYTES: usize`: bytes a suspended context keeps next to its stack pointer; at
//!   most `INITIAL_FRAME_BYTES` (a fresh context is a suspended one whose frame [`InitStack`]
//!   wrote), and small: a tasklet that has just run into the kernel's guard zone (1 KiB or more)
//!   must still be able to switch away without leaving its stack region.
//! - `SUSPENDED_BYTES_BELOW_SP: usize`: how many of those bytes lie below the suspended stack
//!   pointer (0 where the switch pushes its frame). Stack slicing copies a suspended stack from
//!   that far below the pointer up to its top, and puts it back at the same addresses.
//!
//! # Cost
//! The three switches are `#[inline(always)]` inline assembly without a call or a frame of their
//! own, and resume by an indirect jump rather than a return (which would miss the return-stack
//! predictor on every switch). The kernel's hot paths (`schedule`, blocking, a rendezvous) are a
//! few dozen instructions around them; `cargo run -- count scheduling::` measures the result.

use crate::context;

/// Entry of a fresh context (`context::EntryFn`): `arg` is what the first switch into the context
/// passed, `data` what [`InitStack`] was given. It must never return (a port's trampoline traps
/// if it does).
pub type EntryFn = extern "C" fn(arg: usize, data: usize) -> !;

/// `context::switch`: suspends the running context and resumes another.
///
/// **Does**: saves what resuming the running context needs on its own stack, stores its stack
/// pointer in `*save_sp`, and continues the context whose stack pointer is `resume_sp`. When some
/// later switch resumes this context, returns that switch's `arg`; a fresh context receives `arg`
/// as its entry's first argument.
///
/// **Preserves** the callee-saved state listed in the module docs; clobbers at most the
/// caller-saved registers (which the inline assembly declares). Leaves the interrupt mask as it
/// is: the resumed context runs with the mask of the code that switched to it. Never switches the
/// CPU-naming register.
///
/// # Safety
/// `save_sp` must be valid for a write (it may be the word `resume_sp` was read from: the
/// value is taken first). `resume_sp` must come from a completed suspension (a switch that
/// stored it) or from [`InitStack`], not resumed since, with its stack still allocated and
/// running nowhere else. Call it from the CPU's ordinary (non-interrupt) code.
pub type Switch = unsafe fn(save_sp: *mut usize, resume_sp: usize, arg: usize) -> usize;

/// `context::switch_reporting_saver`: [`SwitchWithoutArg`] that, when resumed, returns the
/// `save_sp` the resuming switch was given (every switch, [`SwitchFromInterrupt`] included, must
/// leave it in the register it came in, so that telling costs the switchers nothing). The
/// kernel's stack-slicing restorer learns from it which tasklet switched to it.
///
/// # Safety
/// As for [`Switch`].
pub type SwitchReportingSaver = unsafe fn(save_sp: *mut usize, resume_sp: usize) -> *mut usize;

/// `context::switch_without_arg`: [`Switch`] passing no argument, for callers whose contexts
/// ignore it (the kernel's hot paths): a fresh context's entry receives an unspecified `arg`. It
/// may be an instruction cheaper than [`Switch`]; otherwise it is the same, safety included.
pub type SwitchWithoutArg = unsafe fn(save_sp: *mut usize, resume_sp: usize);

/// `context::switch_from_interrupt`: [`Switch`] from the timer interrupt, for preemption.
///
/// **Does**: as [`Switch`], called with interrupts masked from the board's timer interrupt
/// handler (through `spindle::tasklet::timer_interrupt`), on the interrupted context's stack.
/// The context it resumes runs with interrupts enabled, as all code outside a handler does; when
/// something switches back to this context, interrupts are masked again before it returns, so
/// the handler finishes, restores the interrupted state and returns from the interrupt masked.
/// Where no interrupt ever switches (hosted builds, user mode) it is [`Switch`].
///
/// # Safety
/// As for [`Switch`], and only from an interrupt handler's context as described.
pub type SwitchFromInterrupt =
    unsafe fn(save_sp: *mut usize, resume_sp: usize, arg: usize) -> usize;

/// `context::spindle_switch_context`: [`Switch`] as an ordinary, out-of-line function with the C
/// ABI and the unmangled symbol `spindle_switch_context`, preserving every callee-saved register
/// across the call, for callers in assembly (the self-test's probe and scrambler) and tests.
///
/// # Safety
/// As for [`Switch`].
pub type SwitchContext =
    unsafe extern "C" fn(save_sp: *mut usize, resume_sp: usize, arg: usize) -> usize;

/// `context::init_stack`: lays out a fresh context at the top of a stack.
///
/// **Does**: writes at most `INITIAL_FRAME_BYTES` below `stack_top` and returns the context's
/// stack pointer, ready for any switch. Its first resumption calls `entry(arg, data)` (`arg`
/// from that switch) on this stack with the C ABI's stack alignment, a terminated frame chain
/// (unwinders and debuggers stop there), the global registers the compiled code relies on
/// (PowerPC64: r2, the TOC), a clear floating-point control state where the port switches it,
/// and on bare metal with interrupts enabled whoever resumed it (a secondary CPU's boot code runs
/// masked). Every other callee-saved register starts cleared, not with its creator's values:
/// nothing leaks between contexts, and a register class a context never uses leaves only zeros
/// in its save slots, which stack slicing does not store. It switches nothing itself.
///
/// # Safety
/// `stack_top` must be the 16-byte aligned end of a writable region of at least
/// `INITIAL_FRAME_BYTES` bytes plus whatever `entry` uses, which nothing else uses while the
/// context lives.
pub type InitStack = unsafe fn(stack_top: usize, entry: EntryFn, data: usize) -> usize;

/// `context::call_on_stack`: runs a function on another stack (the kernel's stack spilling).
///
/// **Does**: calls `function(data)` with the stack pointer moved to `stack_top` (PowerPC64 puts
/// a minimal caller frame there whose back chain points at the old stack) and restores the old
/// stack pointer when it returns. `function` may switch contexts (a spilled tasklet blocks as
/// usual), so the old stack pointer is kept where every switch preserves it: in a callee-saved
/// register that the inline assembly declares clobbered, so the caller's value is saved too.
///
/// # Safety
/// `stack_top` must be the 16-byte aligned end of a writable region large enough for
/// `function`, used by nothing else until this returns. `function` must not unwind (the kernel
/// catches panics before they reach it).
pub type CallOnStack = unsafe fn(stack_top: usize, function: extern "C" fn(usize), data: usize);

/// `context::stack_pointer`: the running code's stack pointer, read without a memory access and
/// `#[inline(always)]`. The kernel compares it with the running tasklet's stack at every switch
/// (the guard check) and measures the stack left with it (`tasklet::spill`).
pub type StackPointer = fn() -> usize;

/// `context::selftest::spindle_probe_preservation`: the self-test's probe (unmangled symbol, in
/// assembly).
///
/// **Does**: as an ordinary C-ABI function (it restores its caller's callee-saved registers
/// before returning), puts a distinct sentinel in every register the switch promises to
/// preserve, calls `spindle_switch_context(save_sp, resume_sp, 0)` and, when switched back to,
/// compares them. Returns the mask of registers that changed, 0 when all survived (each port
/// documents its bits).
///
/// # Safety
/// As for [`Switch`]; `resume_sp` is a scrambler context ([`ScrambleAndSwitch`]) that switches
/// back.
pub type ProbePreservation = unsafe extern "C" fn(save_sp: *mut usize, resume_sp: usize) -> u64;

/// `context::selftest::spindle_scramble_and_switch`: the self-test's scrambler (unmangled
/// symbol, in assembly), the body of a context made with [`InitStack`].
///
/// **Does**: forever overwrites every register the probe watches with values other than the
/// probe's, then switches to `*probe_sp` (read afresh each time) through
/// `spindle_switch_context`, saving its own stack pointer in `*save_sp`. Never returns.
///
/// # Safety
/// `save_sp` and `probe_sp` must stay valid for as long as the probe resumes the scrambler, and
/// `*probe_sp` must hold a probe suspended in [`ProbePreservation`] whenever it is resumed.
pub type ScrambleAndSwitch = unsafe extern "C" fn(save_sp: *mut usize, probe_sp: *const usize) -> !;

/// `context::selftest::spindle_report_fresh_registers`: the fresh-context report (unmangled
/// symbol, in assembly), the entry of a context made with [`InitStack`].
///
/// **Does**: ORs every register [`InitStack`] promises to clear, as the context starts, into
/// the word at `data`, then switches (through `spindle_switch_context`, saving itself at
/// `data + 8`) to the context suspended at `data + 16`. Never returns; never resumed.
/// [`check_fresh_context_registers`](crate::check_fresh_context_registers) drives it.
///
/// # Safety
/// `data` points at three words that outlive the context; the third holds a suspended context
/// by the time this runs.
pub type ReportFreshRegisters = unsafe extern "C" fn(arg: usize, data: usize) -> !;

// ---- the checks: the running CPU's `context` module against the contract ---------------------

const _: fn(context::EntryFn) -> EntryFn = core::convert::identity;
const _: usize = context::INITIAL_FRAME_BYTES;
const _: () = assert!(context::SWITCH_FRAME_BYTES <= context::INITIAL_FRAME_BYTES);
// Part of the switch frame (written as a subtraction: on x86_64 the part is 0, and a `<=` with a
// constant 0 is a comparison lints call absurd).
const _: usize = context::SWITCH_FRAME_BYTES - context::SUSPENDED_BYTES_BELOW_SP;
const _: Switch = context::switch;
const _: SwitchWithoutArg = context::switch_without_arg;
const _: SwitchFromInterrupt = context::switch_from_interrupt;
const _: SwitchReportingSaver = context::switch_reporting_saver;
const _: SwitchContext = context::spindle_switch_context;
const _: InitStack = context::init_stack;
const _: CallOnStack = context::call_on_stack;
const _: StackPointer = context::stack_pointer;
const _: ProbePreservation = context::selftest::spindle_probe_preservation;
const _: ScrambleAndSwitch = context::selftest::spindle_scramble_and_switch;
const _: ReportFreshRegisters = context::selftest::spindle_report_fresh_registers;
