# berth's exec stub (see src/process/exec_stub.rs): the program that execs the container program, so that at that
# execve /proc/self/exe is a sealed memfd instead of berth's binary on the host (CVE-2019-5736).
#
#   argv: [report fd in decimal, program path, program argv...]; envp: the program's environment.
#   Sets FD_CLOEXEC on the report fd, then execve(path, &argv[2], envp). If either fails: writes "BXEC", the
#   errno (u32 LE) and the path to the report fd in one writev, and exits 127. Any other argv (fewer than 3 entries, a report fd that is not a
#   decimal number, e.g. when run again through `#!/proc/self/exe`) exits 127 at once.
#
# Assembled (x86_64, GNU as) by scripts/gen-exec-stub.sh into the CODE bytes of src/process/exec_stub.rs.
    .intel_syntax noprefix
    .text
    .globl _start
_start:
    cmp     qword ptr [rsp], 3          # argc >= 3
    jb      die
    mov     rsi, [rsp+8]                # argv[0]: the report fd
    cmp     byte ptr [rsi], 0
    je      die
    xor     ebx, ebx                    # ebx = fd (kept across syscalls)
parse:
    movzx   eax, byte ptr [rsi]
    test    eax, eax
    jz      parsed
    sub     eax, 48                     # '0'
    cmp     eax, 9
    ja      die                         # not a digit
    imul    ebx, ebx, 10
    add     ebx, eax
    inc     rsi
    jmp     parse
parsed:
    mov     edi, ebx
    mov     esi, 2                      # F_SETFD
    mov     edx, 1                      # FD_CLOEXEC
    mov     eax, 72                     # fcntl
    syscall
    test    rax, rax
    jnz     failed                      # never run the program with the report fd open
    mov     rdi, [rsp+16]               # argv[1]: the program
    lea     rsi, [rsp+24]               # &argv[2]: its argv
    mov     rax, [rsp]
    lea     rdx, [rsp+rax*8+16]         # envp = &argv[argc + 1]
    mov     eax, 59                     # execve
    syscall
failed:
    neg     eax                         # errno
    shl     rax, 32
    mov     ecx, 0x43455842             # "BXEC"
    or      rax, rcx
    push    rax                         # the record: magic, errno; argv[1] is now at [rsp+24]
    mov     rsi, [rsp+24]
    xor     edx, edx
strlen:
    cmp     byte ptr [rsi+rdx], 0
    je      report
    inc     rdx
    jmp     strlen
report:
    mov     rcx, rsp
    push    rdx                         # iov[1]: the path
    push    rsi
    push    8                           # iov[0]: the record
    push    rcx
    mov     edi, ebx
    mov     rsi, rsp
    mov     edx, 2
    mov     eax, 20                     # writev: one write, one packet on a SEQPACKET socket
    syscall
die:
    mov     edi, 127
    mov     eax, 231                    # exit_group
    syscall
