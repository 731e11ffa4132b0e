//! Register-preservation probe: sentinels in every callee-saved register survive a switch.
//!
//! The probe fills rbx, rbp and r12-r15 with sentinels, switches away through
//! [`spindle_switch_context`](super::context::spindle_switch_context), and compares on return.
//! The scrambler overwrites all of them before switching back. These are the self-test items of
//! the [arch contract](crate::contract), reached as `context::selftest`;
//! [`check_register_preservation`](crate::check_register_preservation) drives them.

use core::arch::global_asm;

unsafe extern "C" {
    /// Fills rbx, rbp and r12-r15 with sentinels, calls
    /// `spindle_switch_context(save_sp, resume_sp, 0)`, and on return compares them.
    /// Returns a bit mask of the registers that changed (0 = all preserved).
    pub fn spindle_probe_preservation(save_sp: *mut usize, resume_sp: usize) -> u64;
    /// Overwrites every callee-saved register with garbage, then switches to `*probe_sp`
    /// saving its own stack pointer in `save_sp`; loops forever doing so.
    pub fn spindle_scramble_and_switch(save_sp: *mut usize, probe_sp: *const usize) -> !;
    /// A fresh context's entry: ORs rbx, rbp and r12-r15 (as it starts) into `data[0]`, then
    /// switches to `data[2]`, saving itself at `data[1]`. Never returns.
    pub fn spindle_report_fresh_registers(arg: usize, data: usize) -> !;
}

global_asm!(
    ".text",
    ".global spindle_probe_preservation",
    ".p2align 4",
    "spindle_probe_preservation:",
    "    push rbp",
    "    push rbx",
    "    push r12",
    "    push r13",
    "    push r14",
    "    push r15",
    "    sub rsp, 24",
    "    movabs rbx, 0x5b5b5b5b5b5b0001",
    "    movabs rbp, 0x5b5b5b5b5b5b0002",
    "    movabs r12, 0x5b5b5b5b5b5b0003",
    "    movabs r13, 0x5b5b5b5b5b5b0004",
    "    movabs r14, 0x5b5b5b5b5b5b0005",
    "    movabs r15, 0x5b5b5b5b5b5b0006",
    "    xor edx, edx",
    "    call spindle_switch_context",
    "    xor eax, eax",
    "    movabs rcx, 0x5b5b5b5b5b5b0001",
    "    cmp rbx, rcx",
    "    je 1f",
    "    or rax, 1",
    "1:  movabs rcx, 0x5b5b5b5b5b5b0002",
    "    cmp rbp, rcx",
    "    je 1f",
    "    or rax, 2",
    "1:  movabs rcx, 0x5b5b5b5b5b5b0003",
    "    cmp r12, rcx",
    "    je 1f",
    "    or rax, 4",
    "1:  movabs rcx, 0x5b5b5b5b5b5b0004",
    "    cmp r13, rcx",
    "    je 1f",
    "    or rax, 8",
    "1:  movabs rcx, 0x5b5b5b5b5b5b0005",
    "    cmp r14, rcx",
    "    je 1f",
    "    or rax, 16",
    "1:  movabs rcx, 0x5b5b5b5b5b5b0006",
    "    cmp r15, rcx",
    "    je 1f",
    "    or rax, 32",
    "1:  add rsp, 24",
    "    pop r15",
    "    pop r14",
    "    pop r13",
    "    pop r12",
    "    pop rbx",
    "    pop rbp",
    "    ret",
    "",
    ".global spindle_scramble_and_switch",
    ".p2align 4",
    "spindle_scramble_and_switch:",
    "    mov r12, rdi",
    "    mov r13, rsi",
    "2:  movabs rbx, 0xdeaddeaddead0001",
    "    movabs rbp, 0xdeaddeaddead0002",
    "    movabs r14, 0xdeaddeaddead0005",
    "    movabs r15, 0xdeaddeaddead0006",
    "    mov rdi, r12",
    "    mov rsi, [r13]",
    "    push r12",
    "    push r13",
    "    movabs r12, 0xdeaddeaddead0003",
    "    movabs r13, 0xdeaddeaddead0004",
    "    mov rdi, [rsp + 8]",
    "    xor edx, edx",
    "    call spindle_switch_context",
    "    pop r13",
    "    pop r12",
    "    jmp 2b",
);

// The fresh-context report (see the declaration). Entered by a call: one push realigns the
// stack for the call to the switch.
global_asm!(
    ".text",
    ".global spindle_report_fresh_registers",
    ".p2align 4",
    "spindle_report_fresh_registers:",
    "    push rax",
    "    mov rax, rbx",
    "    or rax, rbp",
    "    or rax, r12",
    "    or rax, r13",
    "    or rax, r14",
    "    or rax, r15",
    "    mov [rsi], rax",
    "    lea rdi, [rsi + 8]",
    "    mov rsi, [rsi + 16]",
    "    xor edx, edx",
    "    call spindle_switch_context",
    "    ud2",
);
