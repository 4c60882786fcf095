// netrr-tap: the native half of netrr's tap endpoint (src/io/tap-helper.ts).
//
// Opens a Linux tap device, optionally inside a named network namespace, and
// relays frames between it and file descriptor 3 in QEMU's stream framing
// (reference qemu-interop.md §1): a 4-byte big-endian length, with --vnet-hdr
// a 4-byte big-endian vnet header length, then the frame (header included).
// Node can neither issue TUNSETIFF nor poll a character device; this program
// does both, and Node sees fd 3 as an ordinary stream socket.
//
// Usage: netrr-tap IFNAME [--netns NAME|PATH] [--vnet-hdr] [--vnet-hdr-len 10|12]
// stdout: "ready IFNAME" once the tap is open, then "drop REASON" per frame
//         the tap refused (Node counts them); stderr: one line per fatal error.
// Exit: 0 when fd 3 reaches end of file, 1 on a setup error, 2 on a framing
// error from Node's side (impossible unless memory is corrupt), 3 on I/O error.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#define SOCK_FD 3
// A tap frame is at most 64 KiB plus the vnet header (tun.c caps at 65535 + hdr).
#define MAX_RECORD_BYTES (65536 + 64)
#define BUF_BYTES (1024 * 1024)
// The common virtio_net_hdr (flags, gso_type, hdr_len, gso_size, csum_start,
// csum_offset); the 12-byte form adds num_buffers, meaningless on transmit.
#define VNET_CORE_BYTES 10

static uint8_t tx_buf[BUF_BYTES]; // tap → fd 3, framed
static size_t tx_start, tx_end;
static uint8_t rx_buf[BUF_BYTES]; // fd 3 → tap, framed
static size_t rx_start, rx_end;

static int vnet_hdr;
static int vnet_len = 12;

static void die(int status, const char *what) {
  fprintf(stderr, "netrr-tap: %s: %s\n", what, strerror(errno));
  exit(status);
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int open_tap(const char *ifname) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die(1, "open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0);
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die(1, "TUNSETIFF");
  // No TUNSETOFFLOAD: the kernel then hands us only whole, checksummed
  // frames (no GSO, no partial checksums), which any peer can take.
  if (vnet_hdr && ioctl(fd, TUNSETVNETHDRSZ, &vnet_len) < 0) die(1, "TUNSETVNETHDRSZ");
  return fd;
}

static void enter_netns(const char *name) {
  char path[4096];
  if (strchr(name, '/') != NULL) snprintf(path, sizeof path, "%s", name);
  else snprintf(path, sizeof path, "/run/netns/%s", name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(1, path);
  if (setns(fd, CLONE_NEWNET) < 0) die(1, "setns");
  close(fd);
}

// Reads every frame the tap has ready into tx_buf, framed. Returns 0 when the
// tap had nothing more, 1 when tx_buf is too full to take another frame.
static int read_tap(int tap) {
  for (;;) {
    size_t head = vnet_hdr ? 8 : 4;
    if (BUF_BYTES - tx_end < head + MAX_RECORD_BYTES) return 1;
    ssize_t n = read(tap, tx_buf + tx_end + head, MAX_RECORD_BYTES);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return 0;
      die(3, "read tap");
    }
    if (n == 0) return 0;
    put_be32(tx_buf + tx_end, (uint32_t)n);
    if (vnet_hdr) put_be32(tx_buf + tx_end + 4, (uint32_t)vnet_len);
    tx_end += head + (size_t)n;
  }
}

// Writes what tx_buf holds to fd 3. Returns 1 if bytes remain (wait for POLLOUT).
static int flush_sock(void) {
  while (tx_start < tx_end) {
    ssize_t n = write(SOCK_FD, tx_buf + tx_start, tx_end - tx_start);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      if (errno == EPIPE || errno == ECONNRESET) exit(0);
      die(3, "write fd 3");
    }
    tx_start += (size_t)n;
  }
  if (tx_start == tx_end) {
    tx_start = tx_end = 0;
    return 0;
  }
  if (tx_start > BUF_BYTES / 2) {
    memmove(tx_buf, tx_buf + tx_start, tx_end - tx_start);
    tx_end -= tx_start;
    tx_start = 0;
  }
  return 1;
}

static void report_drop(const char *reason) {
  printf("drop %s\n", reason);
  fflush(stdout);
}

// Writes the complete records in rx_buf to the tap. Returns 1 if the tap
// pushed back (EAGAIN; wait for POLLOUT), 0 otherwise.
static int write_tap(int tap) {
  static uint8_t hdr[20];
  size_t head = vnet_hdr ? 8 : 4;
  while (rx_end - rx_start >= head) {
    uint8_t *p = rx_buf + rx_start;
    uint32_t len = get_be32(p);
    uint32_t vlen = vnet_hdr ? get_be32(p + 4) : 0;
    if (len == 0 || len > MAX_RECORD_BYTES || vlen > len) {
      fprintf(stderr, "netrr-tap: bad record from fd 3 (length %u, vnet length %u)\n", len, vlen);
      exit(2);
    }
    if (rx_end - rx_start < head + len) break;
    uint8_t *frame = p + head;
    ssize_t n;
    if (!vnet_hdr || vlen == (uint32_t)vnet_len) {
      n = write(tap, frame, len);
    } else {
      // The tap wants exactly vnet_len header bytes: keep the common core
      // (absent for a plain frame), zero the rest.
      memset(hdr, 0, sizeof hdr);
      memcpy(hdr, frame, vlen < VNET_CORE_BYTES ? vlen : VNET_CORE_BYTES);
      struct iovec iov[2] = {{hdr, (size_t)vnet_len}, {frame + vlen, len - vlen}};
      n = writev(tap, iov, 2);
    }
    if (n < 0) {
      if (errno == EAGAIN) return 1;
      if (errno == EINTR) continue;
      // EINVAL (runt), EIO (device down) …: the frame is refused, not fatal.
      report_drop(errno == EIO ? "tap-down" : "tap-refused");
    }
    rx_start += head + len;
  }
  if (rx_start == rx_end) rx_start = rx_end = 0;
  else if (rx_start > 0 && BUF_BYTES - rx_end < head + MAX_RECORD_BYTES) {
    memmove(rx_buf, rx_buf + rx_start, rx_end - rx_start);
    rx_end -= rx_start;
    rx_start = 0;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *ifname = NULL;
  const char *netns = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--netns") == 0 && i + 1 < argc) netns = argv[++i];
    else if (strcmp(argv[i], "--vnet-hdr") == 0) vnet_hdr = 1;
    else if (strcmp(argv[i], "--vnet-hdr-len") == 0 && i + 1 < argc) {
      vnet_len = atoi(argv[++i]);
      if (vnet_len != 10 && vnet_len != 12) {
        fprintf(stderr, "netrr-tap: --vnet-hdr-len must be 10 or 12\n");
        return 1;
      }
    } else if (ifname == NULL && argv[i][0] != '-') ifname = argv[i];
    else {
      fprintf(stderr, "usage: netrr-tap IFNAME [--netns NAME|PATH] [--vnet-hdr] [--vnet-hdr-len 10|12]\n");
      return 1;
    }
  }
  if (ifname == NULL || strlen(ifname) >= IFNAMSIZ) {
    fprintf(stderr, "netrr-tap: an interface name of at most %d characters is required\n", IFNAMSIZ - 1);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  if (fcntl(SOCK_FD, F_GETFD) < 0) die(1, "fd 3 (the frame socket)");
  if (netns != NULL) enter_netns(netns);
  int tap = open_tap(ifname);
  int fl = fcntl(SOCK_FD, F_GETFL);
  if (fl < 0 || fcntl(SOCK_FD, F_SETFL, fl | O_NONBLOCK) < 0) die(1, "fcntl fd 3");
  printf("ready %s\n", ifname);
  fflush(stdout);

  int eof = 0;
  int tap_blocked = 0;  // the tap returned EAGAIN on write
  int sock_blocked = 0; // fd 3 returned EAGAIN on write
  for (;;) {
    struct pollfd p[2] = {{tap, 0, 0}, {SOCK_FD, 0, 0}};
    // Read the tap only while the framed bytes can be passed on: otherwise
    // the kernel queues (and past txqueuelen drops, counted in its stats).
    if (!sock_blocked && BUF_BYTES - tx_end >= 8 + MAX_RECORD_BYTES) p[0].events |= POLLIN;
    if (tap_blocked) p[0].events |= POLLOUT;
    if (!eof && !tap_blocked && BUF_BYTES - rx_end > 0) p[1].events |= POLLIN;
    if (sock_blocked) p[1].events |= POLLOUT;
    if (eof) {
      // Node closed its side: hand the tap what is left, then leave.
      if (!tap_blocked) return 0;
      p[1].fd = -1;
    }
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die(3, "poll");
    }
    if (p[0].revents & (POLLERR | POLLNVAL)) {
      errno = EIO;
      die(3, "tap");
    }
    if (p[0].revents & POLLIN) {
      read_tap(tap);
      sock_blocked = flush_sock();
    }
    if (p[1].revents & POLLOUT) sock_blocked = flush_sock();
    if (p[0].revents & POLLOUT) tap_blocked = write_tap(tap);
    // (A full buffer would make read() return 0, which is not end of file.)
    if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && rx_end < BUF_BYTES) {
      ssize_t n = read(SOCK_FD, rx_buf + rx_end, BUF_BYTES - rx_end);
      if (n > 0) rx_end += (size_t)n;
      else if (n == 0 || (errno != EAGAIN && errno != EINTR)) eof = 1;
      tap_blocked = write_tap(tap);
      if (eof && !tap_blocked && rx_start != rx_end) {
        fprintf(stderr, "netrr-tap: fd 3 closed in the middle of a record\n");
        return 2;
      }
    }
  }
}
