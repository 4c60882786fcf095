/*
 * count-reader: connects to a unix socket, reads as fast as the kernel gives
 * (1 MiB reads, nothing parsed) and prints "done N" each time WANT bytes have
 * arrived. The far end for bench/chain.ts's commit-latency rows: a reader
 * whose ceiling is far above what it measures.
 * Usage: count-reader PATH WANT_BYTES
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
  if (connect(fd, (void *)&a, sizeof a) < 0) return perror("connect"), 1;
  printf("up\n"); fflush(stdout);
  long want = atol(argv[2]), n = 0, reads = 0;
  static char buf[1 << 20];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) return 0;
    n += r; reads++;
    if (n >= want) { printf("done %ld\n", reads); fflush(stdout); n -= want; reads = 0; }
  }
}
