/* A small curses program for the terminal tests (ncurses, 64 and 32 bit): a framed screen
 * with what was typed, the number of keys, the terminal's size as curses knows it (redrawn on
 * KEY_RESIZE, which ncurses makes of SIGWINCH) and the last arrow key; Backspace deletes, q
 * quits with status 6. A restart in a new terminal of another size must look like a resize. */
#include <curses.h>
#include <string.h>

static char typed[256];
static int keys;
static const char *arrow = "none";

static void draw(void) {
    erase();
    box(stdscr, 0, 0);
    mvprintw(1, 2, "curses test");
    mvprintw(2, 2, "size: %dx%d", LINES, COLS);
    mvprintw(3, 2, "keys: %d  arrow: %s", keys, arrow);
    mvprintw(4, 2, "typed: %s", typed);
    move(4, 9 + (int)strlen(typed));
    refresh();
}

int main(void) {
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    draw();
    for (;;) {
        int c = getch();
        if (c == ERR) continue;
        if (c == KEY_RESIZE) {
            draw();
            continue;
        }
        keys++;
        if (c == 'q') break;
        if (c == KEY_UP) arrow = "up";
        else if (c == KEY_DOWN) arrow = "down";
        else if (c == KEY_BACKSPACE || c == 127 || c == 8) {
            size_t n = strlen(typed);
            if (n) typed[n - 1] = 0;
        } else if (c >= ' ' && c < 127 && strlen(typed) < 60) {
            size_t n = strlen(typed);
            typed[n] = (char)c;
            typed[n + 1] = 0;
        }
        draw();
    }
    endwin();
    return 6;
}
