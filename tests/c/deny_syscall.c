/* deny_syscall NR ERRNO [ARG1] -- PROGRAM ARGS...: runs PROGRAM with one system call of
 * x86_64 refused by a seccomp filter (unprivileged: PR_SET_NO_NEW_PRIVS): system call NR fails
 * with ERRNO, when ARG1 is given only if its second argument's low 32 bits are ARG1 (an ioctl's
 * request). Every other call, and every call of a 32-bit process, is allowed. How the tests
 * make a kernel feature missing for real, for one program, without root. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int sep = 1;
  while (sep < argc && strcmp(argv[sep], "--") != 0) sep++;
  if (sep < 3 || sep + 1 >= argc) {
    fprintf(stderr, "usage: deny_syscall NR ERRNO [ARG1] -- PROGRAM ARGS...\n");
    return 1;
  }
  unsigned nr = strtoul(argv[1], 0, 0), err = strtoul(argv[2], 0, 0);
  int by_arg = sep > 3;
  unsigned arg1 = by_arg ? strtoul(argv[3], 0, 0) : 0;
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 6),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 4),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arg1, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, by_arg ? SECCOMP_RET_ALLOW : SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof f / sizeof f[0], f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
    perror("deny_syscall: seccomp");
    return 1;
  }
  execvp(argv[sep + 1], argv + sep + 1);
  perror("deny_syscall: exec");
  return 127;
}
