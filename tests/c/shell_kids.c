/* Children started through system(), popen() and exec of a static program.
 * Usage:
 *   shell_kids system SECS       system(NULL), system("exit 7"), a missing command, then
 *                                system("kill -INT <parent>; sleep SECS; exit 3"): the SIGINT
 *                                must be ignored while system waits; prints the statuses.
 *   shell_kids popen N [WCMD]    popen("<self> writer N; exit 5", "r"): reads N lines written
 *                                over time by the writer (a grandchild: sh forks it), checks
 *                                their order and content, pclose's status; also a "w" stream
 *                                open meanwhile (WCMD, default "<self> sink 0; exit 6", which
 *                                must exit 6), and an invalid mode.
 *   shell_kids sink 0            reads stdin to its end.
 *   shell_kids syswork N         system("<self> work N; exit 3"): a child computation.
 *   shell_kids static PROG MS CODE   fork + execv(PROG MS CODE) and waitpid it.
 *   shell_kids writer N          writes N lines "line I HASH", one every 30 ms.
 *   shell_kids work N            computes for N steps of 20 ms; prints its sum.
 * Each mode prints "parent <pid>" first and a RESULT line at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned long mix(unsigned long x, unsigned long v) {
    for (int k = 0; k < 2000; k++) x = (x ^ (v + (unsigned long)k)) * 1099511628211UL;
    return x;
}

static int code(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st); }

static volatile sig_atomic_t got_int;
static void on_int(int s) { (void)s; got_int = 1; }

static char self[4096];

static int do_system(int secs) {
    int avail = system(NULL) != 0;
    int seven = system("exit 7");
    int missing = system("/nonexistent/command 2>/dev/null");
    signal(SIGINT, on_int);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "sleep %d; exit 3", secs);
    /* SIGINT sent to ourselves meanwhile must be ignored: a child does it. */
    char cmd2[512];
    snprintf(cmd2, sizeof cmd2, "kill -INT %d; %s", (int)getpid(), cmd);
    int st = system(cmd2);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    struct sigaction sa;
    sigaction(SIGINT, NULL, &sa);
    printf("RESULT system avail=%d exit7=%d missing=%d long=%d raw=%d int_delivered=%d chld_blocked_after=%d "
           "handler_back=%d\n",
           avail, code(seven), code(missing), code(st), st == (3 << 8), (int)got_int, sigismember(&now, SIGCHLD),
           sa.sa_handler == on_int);
    return 0;
}

static int do_popen(int n, const char *wcmd) {
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "%s writer %d; exit 5", self, n);
    FILE *f = popen(cmd, "r");
    if (!f) { perror("popen"); return 1; }
    /* A second stream, for writing: its child counts the bytes; it must not hold our read
     * pipe open (POSIX: streams of earlier popen calls are closed in the new child). */
    char wbuf[4300];
    if (!wcmd) {
        snprintf(wbuf, sizeof wbuf, "%s sink 0; exit 6", self);
        wcmd = wbuf;
    }
    FILE *w = popen(wcmd, "w");
    if (!w) { perror("popen w"); return 1; }
    fprintf(w, "hello\n");
    char line[256];
    int got = 0, bad = 0;
    unsigned long sum = 1469598103934665603UL;
    while (fgets(line, sizeof line, f)) {
        int i;
        unsigned long h;
        if (sscanf(line, "line %d %lx", &i, &h) != 2 || i != got || h != mix(i, i)) bad++;
        sum = mix(sum, h);
        got++;
    }
    int wst = pclose(w);
    int st = pclose(f);
    errno = 0;
    FILE *inval = popen("true", "rw");
    int einval = inval == NULL && errno == EINVAL;
    printf("RESULT popen lines=%d bad=%d sum=%lx status=%d wstatus=%d einval=%d\n", got, bad, sum, code(st),
           code(wst), einval);
    return 0;
}

static int do_syswork(int n) {
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "%s work %d; exit 3", self, n);
    int st = system(cmd);
    printf("RESULT syswork status=%d\n", code(st));
    return 0;
}

static int do_writer(int n) {
    for (int i = 0; i < n; i++) {
        printf("line %d %lx\n", i, mix(i, i));
        fflush(stdout);
        usleep(30000);
    }
    return 0;
}

static int do_work(int n) {
    unsigned long x = 1469598103934665603UL;
    for (int i = 0; i < n; i++) {
        x = mix(x, i);
        usleep(20000);
    }
    printf("work sum=%lx\n", x);
    return 0;
}

static int do_static(char *prog, char *ms, char *c) {
    pid_t p = fork();
    if (p < 0) { perror("fork"); return 1; }
    if (p == 0) {
        char *args[] = {prog, ms, c, NULL};
        execv(prog, args);
        perror("execv");
        _exit(126);
    }
    int st;
    while (waitpid(p, &st, 0) < 0) {
        if (errno != EINTR) { perror("waitpid"); return 1; }
    }
    printf("RESULT static child=%d exit=%d\n", (int)p, code(st));
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: see the source\n"); return 2; }
    const char *m = argv[1];
    if (!strcmp(m, "writer")) return do_writer(atoi(argv[2]));
    if (!strcmp(m, "work")) return do_work(atoi(argv[2]));
    if (!strcmp(m, "sink")) {
        char b[512];
        while (read(0, b, sizeof b) > 0) {}
        return 0;
    }
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k < 0) { perror("readlink"); return 2; }
    self[k] = 0;
    printf("parent %d\n", (int)getpid());
    fflush(stdout);
    if (!strcmp(m, "system")) return do_system(atoi(argv[2]));
    if (!strcmp(m, "popen")) return do_popen(atoi(argv[2]), argc > 3 ? argv[3] : NULL);
    if (!strcmp(m, "syswork")) return do_syswork(atoi(argv[2]));
    if (!strcmp(m, "static") && argc > 4) return do_static(argv[2], argv[3], argv[4]);
    fprintf(stderr, "shell_kids: unknown mode %s\n", m);
    return 2;
}
