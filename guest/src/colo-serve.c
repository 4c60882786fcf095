/*
 * colo-serve: a deterministic HTTP/1.0 server for the COLO tests. Two
 * replicas booted apart must answer byte for byte alike, so it sends no Date,
 * Last-Modified or ETag (busybox httpd sends all three, from each guest's own
 * clock). GET /data/N answers N bytes of a fixed xorshift32 stream (seed 1,
 * each state's four bytes little-endian); GET /who answers the ROLE argument
 * (the forced divergence); anything else 404. The whole request head is read
 * before answering (closing with unread bytes would send a RST). One child
 * per connection. Built static by scripts/build-guest.sh.
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void serve(int fd, const char *role) {
  char req[4096];
  size_t have = 0;
  while (have < sizeof req - 1) {
    ssize_t r = read(fd, req + have, sizeof req - 1 - have);
    if (r <= 0) return;
    have += (size_t)r;
    req[have] = 0;
    if (strstr(req, "\r\n\r\n") != NULL) break;
  }
  char head[256];
  long n;
  if (sscanf(req, "GET /data/%ld ", &n) == 1 && n >= 0) {
    int h = snprintf(head, sizeof head, "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %ld\r\n\r\n", n);
    if (write_all(fd, head, (size_t)h) < 0) return;
    static char buf[65536];
    unsigned x = 1;
    while (n > 0) {
      size_t k = 0;
      for (; k + 4 <= sizeof buf; k += 4) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[k] = (char)x;
        buf[k + 1] = (char)(x >> 8);
        buf[k + 2] = (char)(x >> 16);
        buf[k + 3] = (char)(x >> 24);
      }
      size_t take = (size_t)n < k ? (size_t)n : k;
      if (write_all(fd, buf, take) < 0) return;
      n -= (long)take;
    }
  } else if (strncmp(req, "GET /who ", 9) == 0) {
    int h = snprintf(head, sizeof head, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s\n", strlen(role) + 1, role);
    write_all(fd, head, (size_t)h);
  } else {
    const char *nf = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    write_all(fd, nf, strlen(nf));
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: colo-serve PORT ROLE\n");
    return 2;
  }
  signal(SIGCHLD, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int on = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) return perror("listen"), 1;
  printf("COLO-SERVING %s\n", argv[1]);
  fflush(stdout);
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    if (fork() == 0) {
      close(s);
      serve(c, argv[2]);
      shutdown(c, SHUT_WR);
      /* Wait for the client's FIN so the close is orderly on both replicas. */
      char sink[512];
      while (read(c, sink, sizeof sink) > 0) {}
      _exit(0);
    }
    close(c);
  }
}
