/*
 * udp-flood: sends COUNT numbered UDP datagrams of SIZE bytes to IP:PORT as
 * fast as the guest can, for the overflow-policy tests of netrr's buffer.
 * Nothing is lost silently inside the guest: IP_RECVERR makes a full device
 * queue visible as ENOBUFS (Linux otherwise swallows it for UDP), and such a
 * datagram is sent again. With MAC, a permanent neighbour entry for IP on
 * eth0 comes first: without it the datagrams sent while ARP is unresolved
 * are dropped by the kernel, silently even with IP_RECVERR (busybox's ip
 * cannot add neighbours). Payload: "#<n>#" then dots. Prints FLOOD-SENT <n>,
 * then sends "#end#" markers until stopped.
 * Built static by scripts/build-guest.sh (the guest has no libc).
 */
#include <arpa/inet.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: udp-flood IP PORT COUNT SIZE [MAC]\n");
    return 2;
  }
  long count = atol(argv[3]);
  size_t size = (size_t)atol(argv[4]);
  if (size < 16 || size > 1472) size = 1000;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return perror("socket"), 1;
  int on = 1;
  setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) return fprintf(stderr, "bad address\n"), 2;
  if (argc == 6) {
    struct arpreq req;
    memset(&req, 0, sizeof req);
    struct sockaddr_in *pa = (struct sockaddr_in *)&req.arp_pa;
    pa->sin_family = AF_INET;
    pa->sin_addr = to.sin_addr;
    req.arp_ha.sa_family = ARPHRD_ETHER;
    unsigned m[6];
    if (sscanf(argv[5], "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) return fprintf(stderr, "bad MAC\n"), 2;
    for (int k = 0; k < 6; k++) req.arp_ha.sa_data[k] = (char)m[k];
    req.arp_flags = ATF_PERM | ATF_COM;
    strcpy(req.arp_dev, "eth0");
    if (ioctl(fd, SIOCSARP, &req) < 0) return perror("SIOCSARP"), 1;
  }
  char buf[1500];
  long sent = 0, retries = 0;
  for (long i = 0; i < count; i++) {
    memset(buf, '.', size);
    int n = snprintf(buf, sizeof buf, "#%ld#", i);
    buf[n] = '.';
    for (;;) {
      if (sendto(fd, buf, size, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)size) break;
      if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) return perror("sendto"), 1;
      retries++;
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
    }
    sent++;
  }
  printf("FLOOD-SENT %ld retries %ld\n", sent, retries);
  fflush(stdout);
  /* Then an end marker every 100 ms until the guest is stopped: frames keep
     their order through QEMU and netrr, so a marker at the far side means every
     datagram before it has left this guest (its queue may hold many while the
     far side applies backpressure, and a guest that powered off would lose them). */
  memset(buf, '.', size);
  memcpy(buf, "#end#", 5);
  for (;;) {
    sendto(fd, buf, size, 0, (struct sockaddr *)&to, sizeof to);
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
  }
}
