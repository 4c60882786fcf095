// Load driver for bench/compare-vs-qemu.ts, in C so that its own ceiling
// stays far above what it measures (the Node driver's ceiling was below 1 M
// pps at 64 B, under the 5x-QEMU mark it had to show).
//
// drive PRI SEC|- OUT FRAME_BYTES FLOWS FRAMES WINDOW LAG [udp|tcp [WARMUP]]
//   Connects OUT, PRI and SEC (unix sockets; SEC "-" for none), sends FRAMES
//   identical frames in QEMU framing to PRI and SEC (FLOWS source ports,
//   32 records per write, SEC trailing PRI by LAG frames), keeps at most
//   WINDOW frames unreleased, counts the records coming out of OUT, and
//   prints "pps N" for the timed part. udp (default): the same datagrams over
//   and over; tcp: each flow a stream of segments whose sequence numbers
//   advance by the payload length. WARMUP frames go first, untimed.
// latency PRI SEC OUT FRAME_BYTES COUNT GAP_US
//   One UDP pair at a time (primary written first, then secondary), 2000
//   untimed, then COUNT timed, GAP_US apart; prints "p50 N p99 N" in microseconds from the
//   primary's write to its release read from OUT.
// sink PRI OUT
//   The ceiling: listens on PRI and OUT and copies bytes PRI -> OUT, no compare.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RECORDS_PER_WRITE 32

static void die(const char *what) {
  fprintf(stderr, "compare-driver: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int unix_connect(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  for (int tries = 0; tries < 200; tries++) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
    close(fd);
    usleep(50000);
  }
  die(path);
  return -1;
}

static int unix_listen(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4) < 0) die(path);
  return fd;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint16_t csum16(const uint8_t *p, size_t n, uint32_t sum) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += (uint32_t)(p[n - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

// One Ethernet/IPv4/UDP frame of `size` bytes from source port `sport`, as bench's buildFrame makes it.
static void build_frame(uint8_t *f, int size, int sport, int fill) {
  static const uint8_t dst[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x57}, src[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
  memset(f, 0, (size_t)size);
  memcpy(f, dst, 6);
  memcpy(f + 6, src, 6);
  f[12] = 0x08;
  uint8_t *ip = f + 14;
  int iplen = size - 14;
  ip[0] = 0x45;
  ip[2] = (uint8_t)(iplen >> 8);
  ip[3] = (uint8_t)iplen;
  ip[8] = 64;
  ip[9] = 17;
  const uint8_t s4[4] = {10, 0, 0, 1}, d4[4] = {10, 0, 0, 2};
  memcpy(ip + 12, s4, 4);
  memcpy(ip + 16, d4, 4);
  uint16_t c = csum16(ip, 20, 0);
  ip[10] = (uint8_t)(c >> 8);
  ip[11] = (uint8_t)c;
  uint8_t *udp = ip + 20;
  int ulen = iplen - 20;
  udp[0] = (uint8_t)(sport >> 8);
  udp[1] = (uint8_t)sport;
  udp[2] = 0x13;
  udp[3] = 0x88; // 5000
  udp[4] = (uint8_t)(ulen >> 8);
  udp[5] = (uint8_t)ulen;
  memset(udp + 8, fill, (size_t)(ulen - 8));
}

// One Ethernet/IPv4/TCP segment of `size` bytes (ACK|PSH) from source port `sport`; seq set by set_seq.
static void build_segment(uint8_t *f, int size, int sport, int fill) {
  build_frame(f, size, sport, fill);
  uint8_t *ip = f + 14;
  ip[9] = 6;
  ip[10] = ip[11] = 0;
  uint16_t c = csum16(ip, 20, 0);
  ip[10] = (uint8_t)(c >> 8);
  ip[11] = (uint8_t)c;
  uint8_t *tcp = ip + 20;
  memset(tcp + 4, 0, 16);
  memset(tcp + 20, fill, (size_t)(size - 54));
  tcp[8] = 0, tcp[9] = 0, tcp[10] = 0x10, tcp[11] = 0x01; // ack 4097
  tcp[12] = 5 << 4;
  tcp[13] = 0x18; // ACK|PSH
  tcp[14] = 0xff, tcp[15] = 0xff;
}

static void set_seq(uint8_t *f, uint32_t seq) {
  uint8_t *tcp = f + 34;
  tcp[4] = (uint8_t)(seq >> 24), tcp[5] = (uint8_t)(seq >> 16), tcp[6] = (uint8_t)(seq >> 8), tcp[7] = (uint8_t)seq;
}

// Counts whole records in a byte stream of QEMU framing (no vnet field).
struct counter {
  uint8_t hdr[4];
  int hdr_have;
  uint32_t body_left;
  uint64_t records;
};

static void count_bytes(struct counter *c, const uint8_t *p, size_t n) {
  while (n > 0) {
    if (c->body_left > 0) {
      size_t k = n < c->body_left ? n : c->body_left;
      c->body_left -= (uint32_t)k;
      p += k;
      n -= k;
      if (c->body_left == 0) c->records++;
      continue;
    }
    c->hdr[c->hdr_have++] = *p++;
    n--;
    if (c->hdr_have == 4) {
      c->hdr_have = 0;
      c->body_left = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 | (uint32_t)c->hdr[2] << 8 | c->hdr[3];
      if (c->body_left == 0) c->records++;
    }
  }
}

struct sender {
  int fd;
  const uint8_t *chunk; // current chunk being written
  size_t off, len;
  long phase;
  long sent; // frames fully handed to write()
  uint8_t *own; // tcp: this side's chunk, its sequence numbers set per write
};

static double percentile(double *xs, int n, double q) {
  for (int i = 1; i < n; i++) // insertion sort: n is small
    for (int j = i; j > 0 && xs[j - 1] > xs[j]; j--) {
      double t = xs[j];
      xs[j] = xs[j - 1];
      xs[j - 1] = t;
    }
  return xs[(int)(q * (n - 1))];
}

static int latency_main(const char *pri_path, const char *sec_path, const char *out_path, int size, int count, int gap_us) {
  size_t rec = 4 + (size_t)size;
  uint8_t *r = malloc(rec);
  r[0] = (uint8_t)(size >> 24), r[1] = (uint8_t)(size >> 16), r[2] = (uint8_t)(size >> 8), r[3] = (uint8_t)size;
  build_frame(r + 4, size, 20000, 1);
  int out = unix_connect(out_path), pri = unix_connect(pri_path), sec = unix_connect(sec_path);
  static uint8_t rbuf[1 << 16];
  double *lat = malloc(sizeof(double) * (size_t)count);
  int got = 0, warm = 0;
  for (int i = -2000; i < count; i++) { // 2000 untimed pairs first (V8 compiles the hot path meanwhile)
    struct counter cnt = {0};
    double t0 = now_s();
    if (write(pri, r, rec) != (ssize_t)rec || write(sec, r, rec) != (ssize_t)rec) die("write");
    int probes = 0;
    while (cnt.records == 0) {
      struct pollfd p = {out, POLLIN, 0};
      if (poll(&p, 1, warm ? 2000 : 50) <= 0) {
        // Until the first release, the proxy may not have taken OUT yet and drops what it releases: send the pair again.
        if (!warm && ++probes < 200) {
          if (write(pri, r, rec) != (ssize_t)rec || write(sec, r, rec) != (ssize_t)rec) die("write");
          continue;
        }
        fprintf(stderr, "compare-driver: no release within 2 s\n");
        return 1;
      }
      ssize_t n = read(out, rbuf, sizeof rbuf);
      if (n <= 0) die("read out");
      count_bytes(&cnt, rbuf, (size_t)n);
    }
    warm = 1;
    if (i >= 0) lat[got++] = (now_s() - t0) * 1e6;
    usleep((useconds_t)gap_us);
  }
  double p50 = percentile(lat, got, 0.5), p99 = percentile(lat, got, 0.99);
  printf("p50 %.1f p99 %.1f\n", p50, p99);
  return 0;
}

static _Noreturn void sink_main(const char *pri_path, const char *out_path) {
  int lp = unix_listen(pri_path), lo = unix_listen(out_path);
  for (;;) {
    int out = accept(lo, NULL, NULL);
    int pri = accept(lp, NULL, NULL);
    if (out < 0 || pri < 0) die("accept");
    static uint8_t buf[1 << 20];
    for (;;) {
      ssize_t n = read(pri, buf, sizeof buf);
      if (n <= 0) break;
      for (ssize_t o = 0; o < n;) {
        ssize_t w = write(out, buf + o, (size_t)(n - o));
        if (w <= 0) break;
        o += w;
      }
    }
    close(out);
    close(pri);
  }
}

// Starts the next chunk of a side. tcp: the side's own copy, each record's
// sequence number set from its global index (flow = index % flows).
static void next_chunk(struct sender *x, uint8_t *chunks, size_t chunk_len, int phases, size_t rec, int flows, int tcp, int payload) {
  long ph = x->phase++ % phases;
  uint8_t *c = chunks + (size_t)ph * chunk_len;
  if (tcp) {
    uint8_t *own = x->own + (size_t)ph * chunk_len;
    memcpy(own, c, chunk_len);
    for (int k = 0; k < RECORDS_PER_WRITE; k++) {
      long idx = x->sent + k;
      set_seq(own + (size_t)k * rec + 4, (uint32_t)(1000 + (idx / flows + 1) * (long)payload));
    }
    c = own;
  }
  x->chunk = c;
  x->off = 0;
  x->len = chunk_len;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "sink") == 0) sink_main(argv[2], argv[3]);
  if (argc == 8 && strcmp(argv[1], "latency") == 0) return latency_main(argv[2], argv[3], argv[4], atoi(argv[5]), atoi(argv[6]), atoi(argv[7]));
  if (argc < 10 || argc > 12 || strcmp(argv[1], "drive") != 0) {
    fprintf(stderr, "usage: compare-driver drive PRI SEC|- OUT FRAME_BYTES FLOWS FRAMES WINDOW LAG [udp|tcp [WARMUP]] | latency PRI SEC OUT FRAME_BYTES COUNT GAP_US | sink PRI OUT\n");
    return 2;
  }
  const char *pri_path = argv[2], *sec_path = argv[3], *out_path = argv[4];
  int size = atoi(argv[5]), flows = atoi(argv[6]);
  long frames = atol(argv[7]), window = atol(argv[8]), lag = atol(argv[9]);
  int tcp = argc > 10 && strcmp(argv[10], "tcp") == 0;
  long warmup = argc > 11 ? atol(argv[11]) : 0;
  // Chunks cover lcm(FLOWS, 32) records, so record i of the stream is always flow i % FLOWS.
  int g = flows, b = RECORDS_PER_WRITE;
  while (b != 0) {
    int t = g % b;
    g = b;
    b = t;
  }
  int phases = flows / g;
  size_t rec = 4 + (size_t)size, chunk_len = rec * RECORDS_PER_WRITE;
  uint8_t *chunks = malloc(chunk_len * (size_t)phases);
  if (chunks == NULL) die("malloc");
  for (int ph = 0; ph < phases; ph++)
    for (int k = 0; k < RECORDS_PER_WRITE; k++) {
      uint8_t *r = chunks + (size_t)ph * chunk_len + (size_t)k * rec;
      int i = (ph * RECORDS_PER_WRITE + k) % flows;
      r[0] = (uint8_t)(size >> 24), r[1] = (uint8_t)(size >> 16), r[2] = (uint8_t)(size >> 8), r[3] = (uint8_t)size;
      if (tcp) build_segment(r + 4, size, 20000 + i, i & 0xff);
      else build_frame(r + 4, size, 20000 + i, i & 0xff);
    }
  int out = unix_connect(out_path);
  int pri = unix_connect(pri_path);
  int sec = strcmp(sec_path, "-") == 0 ? -1 : unix_connect(sec_path);
  struct counter cnt = {0};
  static uint8_t rbuf[1 << 20];
  // Probe until one pair comes out: our connect may precede the peer's accept.
  for (int i = 0; i < 100 && cnt.records == 0; i++) {
    if (write(pri, chunks, rec) < 0) die("write pri");
    if (sec >= 0 && write(sec, chunks, rec) < 0) die("write sec");
    struct pollfd p = {out, POLLIN, 0};
    if (poll(&p, 1, 50) > 0) {
      ssize_t n = read(out, rbuf, sizeof rbuf);
      if (n > 0) count_bytes(&cnt, rbuf, (size_t)n);
    }
  }
  if (cnt.records == 0) {
    fprintf(stderr, "compare-driver: nothing released\n");
    return 1;
  }
  usleep(100000);
  for (;;) { // drain the probes
    struct pollfd p = {out, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) break;
    ssize_t n = read(out, rbuf, sizeof rbuf);
    if (n <= 0) break;
  }
  cnt = (struct counter){0};
  int fds[3] = {out, pri, sec};
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0 && fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
  long timed = (frames + RECORDS_PER_WRITE - 1) / RECORDS_PER_WRITE * RECORDS_PER_WRITE;
  warmup = (warmup + RECORDS_PER_WRITE - 1) / RECORDS_PER_WRITE * RECORDS_PER_WRITE;
  long total = warmup + timed;
  struct sender sp = {pri, NULL, 0, 0, 0, 0, NULL}, ss = {sec, NULL, 0, 0, 0, 0, NULL};
  if (tcp) {
    sp.own = malloc(chunk_len * (size_t)phases);
    ss.own = malloc(chunk_len * (size_t)phases);
    if (sp.own == NULL || ss.own == NULL) die("malloc");
  }
  int payload = size - 54;
  double t0 = now_s(), last_progress = t0;
  int timing = warmup == 0;
  uint64_t last_released = 0;
  while ((long)cnt.records < total) {
    // Start a new chunk on a side when its previous one is fully written and the window allows.
    if (sp.chunk == NULL && sp.sent < total && sp.sent - (long)cnt.records + RECORDS_PER_WRITE <= window) next_chunk(&sp, chunks, chunk_len, phases, rec, flows, tcp, payload);
    if (sec >= 0 && ss.chunk == NULL && ss.sent < total && (sp.sent - ss.sent > lag || sp.sent >= total)) next_chunk(&ss, chunks, chunk_len, phases, rec, flows, tcp, payload);
    struct pollfd p[3] = {{out, POLLIN, 0}, {pri, sp.chunk ? POLLOUT : 0, 0}, {sec, ss.chunk ? POLLOUT : 0, 0}};
    int np = poll(p, sec >= 0 ? 3 : 2, 20);
    if (np < 0) die("poll");
    if (p[0].revents & POLLIN) {
      ssize_t n = read(out, rbuf, sizeof rbuf);
      if (n == 0 || (n < 0 && errno != EAGAIN)) die("read out");
      if (n > 0) count_bytes(&cnt, rbuf, (size_t)n);
    }
    struct sender *sides[2] = {&sp, &ss};
    for (int s = 0; s < 2; s++) {
      struct sender *x = sides[s];
      if (x->fd < 0 || x->chunk == NULL || !(p[1 + s].revents & POLLOUT)) continue;
      ssize_t w = write(x->fd, x->chunk + x->off, x->len - x->off);
      if (w < 0 && errno != EAGAIN) die("write");
      if (w > 0) x->off += (size_t)w;
      if (x->off == x->len) {
        x->chunk = NULL;
        x->sent += RECORDS_PER_WRITE;
      }
    }
    double t = now_s();
    if (!timing && (long)cnt.records >= warmup) {
      timing = 1;
      t0 = t;
    }
    if (cnt.records != last_released) {
      last_released = cnt.records;
      last_progress = t;
    } else if (t - last_progress > 5) {
      fprintf(stderr, "compare-driver: stalled at %llu/%ld released (%ld sent)\n", (unsigned long long)cnt.records, total, sp.sent);
      return 1;
    }
  }
  printf("pps %.0f\n", (double)(total - warmup) / (now_s() - t0));
  return 0;
}
