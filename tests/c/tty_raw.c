/* A small raw-mode terminal program (no curses) for the terminal tests: it puts its terminal
 * into a non-canonical, no-echo mode with a changed special character (VKILL = Ctrl-K), then
 * reports each key it reads, the window size at start and on every SIGWINCH, and Ctrl-C
 * (SIGINT, which must reach it through the terminal). Keys:
 *   t  print the terminal's modes as the program sees them (icanon, echo, VKILL) and whether
 *      its process group is the terminal's foreground group
 *   s  print the window size
 * Modes and sizes are asked through a descriptor of /dev/tty it opens at start (fd 3 or
 * above), so that a restart must give that descriptor the new terminal.
 *   q  put the terminal back as it was and exit with status 3
 * At end of input it prints "eof" and exits with status 4. Without a terminal at start it
 * exits with status 5; if its terminal calls fail later it says so and goes on.
 * Every line it prints is a step of its transcript, compared with an uninterrupted run. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static volatile sig_atomic_t winch, intr;
static int step;
static int tty = -1;

static void on_winch(int s) { (void)s; winch = 1; }
static void on_int(int s) { (void)s; intr = 1; }

static void say(const char *fmt, ...) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "[%d] ", ++step);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof buf - n - 2, fmt, ap);
    va_end(ap);
    buf[n++] = '\r';
    buf[n++] = '\n';
    if (write(1, buf, n) < 0) exit(6);
}

static void size(const char *what) {
    struct winsize w;
    if (ioctl(tty, TIOCGWINSZ, &w) == 0)
        say("%s %dx%d", what, w.ws_row, w.ws_col);
    else
        say("%s unknown: %s", what, strerror(errno));
}

static void modes(void) {
    struct termios t;
    if (tcgetattr(tty, &t) != 0) {
        say("modes unknown: %s", strerror(errno));
        return;
    }
    pid_t fg = tcgetpgrp(tty);
    say("icanon=%d echo=%d vkill=%d foreground=%s", !!(t.c_lflag & ICANON), !!(t.c_lflag & ECHO), t.c_cc[VKILL],
        fg == getpgrp() ? "yes" : "no");
}

int main(void) {
    struct termios orig, raw;
    if (tcgetattr(0, &orig) != 0) {
        printf("no terminal: %s\n", strerror(errno));
        return 5;
    }
    tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (tty < 0) {
        printf("no /dev/tty: %s\n", strerror(errno));
        return 5;
    }
    raw = orig;
    raw.c_lflag &= ~(ICANON | ECHO);
    raw.c_iflag &= ~(ICRNL | IXON);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    raw.c_cc[VKILL] = 11;
    if (tcsetattr(0, TCSANOW, &raw) != 0) {
        printf("tcsetattr: %s\n", strerror(errno));
        return 5;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_winch;
    sigaction(SIGWINCH, &sa, NULL);
    sa.sa_handler = on_int;
    sigaction(SIGINT, &sa, NULL);
    say("ready");
    size("size");
    int status = 4;
    for (;;) {
        unsigned char c;
        ssize_t n = read(0, &c, 1);
        if (winch) {
            winch = 0;
            size("winch");
        }
        if (intr) {
            intr = 0;
            say("sigint");
        }
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            modes();
            say("eof");
            break;
        }
        if (c == 'q') {
            say("quit");
            status = 3;
            break;
        } else if (c == 't') {
            modes();
        } else if (c == 's') {
            size("size");
        } else if (c >= 32 && c < 127) {
            say("key %c", c);
        } else {
            say("key %d", c);
        }
    }
    if (tcsetattr(0, TCSANOW, &orig) != 0) say("cannot put the terminal back: %s", strerror(errno));
    return status;
}
