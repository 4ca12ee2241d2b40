/* A parent and a child that share open file descriptions inherited over fork. Both write
 * lines, in turn, to one log the parent opened once (O_WRONLY|O_CREAT|O_TRUNC without
 * O_APPEND, as a shell's `> log`), the child through a dup of it at fd 17; and both read, in
 * turn, fixed 8-byte records from one input file through its single shared offset. A token
 * passed through two pipes makes them alternate. At the end the parent reads the log back:
 * every line must be there, in order, each with the record its writer read (a line lost or
 * overwritten, a record read twice or skipped, breaks it). The log lives in a folder with a long
 * name, so that its path takes several records of the image's fd table.
 * Usage: sharedfd ROUNDS [CHILD_PROGRAM]   (the child execs CHILD_PROGRAM --child ...)
 *        sharedfd --child IN_FD LOG_FD TOKEN_R TOKEN_W ROUNDS */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define REC 8
#define LINE 11
#define DIR "a-folder-whose-long-name-makes-the-path-of-the-log-longer-than-one-fd-record-can-hold"
#define LOG DIR "/log.txt"

static int bad = 0;

/* One turn: read the next record from `in`, write "<who> <record>\n" to `log`. */
static void turn(char who, int in, int log, long expect) {
    char rec[REC + 1] = {0}, line[LINE + 1];
    if (read(in, rec, REC) != REC) { perror("read record"); exit(3); }
    long got = strtol(rec, NULL, 10);
    if (got != expect) {
        fprintf(stderr, "%c read record %ld, expected %ld\n", who, got, expect);
        bad++;
    }
    snprintf(line, sizeof line, "%c %08ld\n", who, got);
    if (write(log, line, LINE) != LINE) { perror("write log"); exit(3); }
    usleep(40000);
}

static void token(int fd, int writing) {
    char t = 't';
    ssize_t r = writing ? write(fd, &t, 1) : read(fd, &t, 1);
    if (r != 1) { perror("token"); exit(3); }
}

static int child(int in, int log, int tr, int tw, int rounds) {
    for (int i = 0; i < rounds; i++) {
        token(tr, 0);
        turn('C', in, log, 2L * i + 1);
        token(tw, 1);
    }
    return bad ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 7 && strcmp(argv[1], "--child") == 0)
        return child(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
    int rounds = argc > 1 ? atoi(argv[1]) : 50;
    FILE *f = fopen("in.dat", "w");
    for (int i = 0; i < 2 * rounds; i++) fprintf(f, "%07d\n", i);
    fclose(f);
    int in = open("in.dat", O_RDONLY);
    mkdir(DIR, 0755);
    int log = open(LOG, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || log < 0 || dup2(log, 17) != 17) { perror("open"); return 2; }
    int down[2], up[2];
    if (pipe(down) || pipe(up)) { perror("pipe"); return 2; }
    printf("ready\n");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        close(log);
        if (argc > 2) {
            char a[5][16];
            snprintf(a[0], 16, "%d", in);
            snprintf(a[1], 16, "%d", 17);
            snprintf(a[2], 16, "%d", down[0]);
            snprintf(a[3], 16, "%d", up[1]);
            snprintf(a[4], 16, "%d", rounds);
            execl(argv[2], argv[2], "--child", a[0], a[1], a[2], a[3], a[4], (char *)0);
            perror("exec");
            _exit(4);
        }
        _exit(child(in, 17, down[0], up[1], rounds));
    }
    close(down[0]);
    close(up[1]);
    for (int i = 0; i < rounds; i++) {
        turn('P', in, log, 2L * i);
        token(down[1], 1);
        token(up[0], 0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    /* The log, read back through a description of its own. */
    int r = open(LOG, O_RDONLY);
    char line[LINE];
    int n = 0, order = 1;
    uint64_t h = 1469598103934665603ULL;
    ssize_t k;
    while ((k = read(r, line, LINE)) == LINE) {
        char want[32];
        snprintf(want, sizeof want, "%c %08d\n", n % 2 ? 'C' : 'P', n);
        if (memcmp(line, want, LINE) != 0) order = 0;
        for (int i = 0; i < LINE; i++) h = (h ^ (unsigned char)line[i]) * 1099511628211ULL;
        n++;
    }
    off_t shared = lseek(log, 0, SEEK_CUR);
    printf("RESULT lines=%d in_order=%d tail=%zd bad=%d child=%d offset=%lld hash=%016llx\n", n, order, k, bad,
           WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), (long long)shared, (unsigned long long)h);
    return 0;
}
