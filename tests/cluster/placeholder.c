/*
 * The placeholder of podline's test images: sleeps until SIGTERM or SIGINT, then exits 0 at once.
 *
 * podline starts every step container on a placeholder image and later swaps in the step's real image.
 * A step's command may already be `/bin/sh -c <script>`, so this program is also installed as /bin/sh in
 * the placeholder image and must ignore whatever arguments it gets. As pid 1 of a container it has to
 * install its own signal handlers (the kernel drops unhandled signals for pid 1) and reaps children.
 *
 * Built with `gcc -static` by tests/cluster/images.py; the same binary is the pause (sandbox) image.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void leave(int signal_number) {
    (void)signal_number;
    _exit(0);
}

static void reap(int signal_number) {
    (void)signal_number;
    while (waitpid(-1, 0, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction action = {0};
    sigemptyset(&action.sa_mask);
    action.sa_handler = leave;
    sigaction(SIGTERM, &action, 0);
    sigaction(SIGINT, &action, 0);
    action.sa_handler = reap;
    action.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &action, 0);
    for (;;) {
        pause();
    }
}
