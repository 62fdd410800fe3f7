/* raw.c: the limits. Plain blocking syscalls and a hand-written epoll loop, no framework.
 *
 *   raw write    PORT MIB BUF            blocking write() of BUF-byte chunks, MIB MiB to the sink
 *   raw sendfile PORT FILE               sendfile(2) of the whole FILE to the sink
 *   raw tls      PORT MIB BUF [VER [SUITE]]  SSL_write of BUF-byte chunks to the tlssink
 *                                        (VER 1.3 or 1.2; default 1.3 TLS_AES_128_GCM_SHA256)
 *   raw handshake PORT SECS full|resumed VER  sequential connections to the tlshello server: connect,
 *                                        handshake (the certificate verified, accepted by a callback),
 *                                        read its byte, close; "resumed" offers the session of the
 *                                        last connection (SSL_set_session). Handshakes per second.
 *   raw echo     PORT CONNS SECS SIZE WARM   epoll echo client, one request outstanding per connection
 *   raw latency  SAMPLES                 data arrival -> data read by a thread parked in epoll_wait
 *   raw memory   PORT CONNS              RSS per connected fd (and per armed epoll read)
 *
 * Each prints "RESULT <value> <unit>" (timed after setup), optionally "EXTRA <name> <value> <unit>"
 * and "CPU <seconds>" (process CPU during the timed part).
 */
#include "common.h"

#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static int bulk_write(int port, uint64_t mib, size_t bufsz) {
  int fd = tcp_connect(port);
  if (fd < 0) die("connect");
  char *buf = malloc(bufsz);
  memset(buf, 'x', bufsz);
  uint64_t total = mib << 20;
  unsigned char hdr[8];
  put_le64(hdr, total);
  double c0 = cpu_s(), t0 = now_s();
  if (write_all(fd, hdr, 8)) die("write");
  for (uint64_t left = total; left;) {
    size_t n = left < bufsz ? (size_t)left : bufsz;
    if (write_all(fd, buf, n)) die("write");
    left -= n;
  }
  char ack;
  if (read_full(fd, &ack, 1)) die("ack");
  double t = now_s() - t0;
  RESULT(total / t / 1e9, "GB/s");
  CPU(cpu_s() - c0);
  return 0;
}

static int bulk_sendfile(int port, const char *path) {
  int file = open(path, O_RDONLY | O_CLOEXEC);
  if (file < 0) die(path);
  struct stat st;
  fstat(file, &st);
  int fd = tcp_connect(port);
  if (fd < 0) die("connect");
  uint64_t total = (uint64_t)st.st_size;
  unsigned char hdr[8];
  put_le64(hdr, total);
  double c0 = cpu_s(), t0 = now_s();
  if (write_all(fd, hdr, 8)) die("write");
  off_t off = 0;
  while ((uint64_t)off < total) {
    ssize_t n = sendfile(fd, file, &off, total - (uint64_t)off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("sendfile");
  }
  char ack;
  if (read_full(fd, &ack, 1)) die("ack");
  double t = now_s() - t0;
  RESULT(total / t / 1e9, "GB/s");
  CPU(cpu_s() - c0);
  return 0;
}

static int ssl_write_all(SSL *ssl, const void *buf, size_t n) {
  size_t w = 0;
  return SSL_write_ex(ssl, buf, n, &w) == 1 && w == n ? 0 : -1;
}

static int bulk_tls(int port, uint64_t mib, size_t bufsz, const char *ver, const char *suite) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  int v = strcmp(ver, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
  SSL_CTX_set_min_proto_version(ctx, v);
  SSL_CTX_set_max_proto_version(ctx, v);
  if (v == TLS1_3_VERSION)
    SSL_CTX_set_ciphersuites(ctx, suite ? suite : "TLS_AES_128_GCM_SHA256");
  else
    SSL_CTX_set_cipher_list(ctx, suite ? suite : "ECDHE-RSA-AES128-GCM-SHA256");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  int fd = tcp_connect(port);
  if (fd < 0) die("connect");
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  if (SSL_connect(ssl) != 1) {
    ERR_print_errors_fp(stderr);
    return 1;
  }
  char *buf = malloc(bufsz);
  memset(buf, 'x', bufsz);
  uint64_t total = mib << 20;
  unsigned char hdr[8];
  put_le64(hdr, total);
  double c0 = cpu_s(), t0 = now_s();
  if (ssl_write_all(ssl, hdr, 8)) die("SSL_write");
  for (uint64_t left = total; left;) {
    size_t n = left < bufsz ? (size_t)left : bufsz;
    if (ssl_write_all(ssl, buf, n)) die("SSL_write");
    left -= n;
  }
  char ack;
  if (SSL_read(ssl, &ack, 1) != 1) die("ack");
  double t = now_s() - t0;
  RESULT(total / t / 1e9, "GB/s");
  CPU(cpu_s() - c0);
  fprintf(stderr, "negotiated %s %s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
  return 0;
}

static int accept_self_signed(int ok, X509_STORE_CTX *ctx) {
  (void)ok, (void)ctx;
  return 1; /* the bench certificate is self-signed: accepted, as the apmnet and .NET clients do */
}

/* One connection of `raw handshake`; returns whether the server resumed the session. */
static int raw_hello(SSL_CTX *ctx, int port, SSL_SESSION **session) {
  int fd = tcp_connect(port);
  if (fd < 0) die("connect");
  set_nodelay(fd);
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  SSL_set1_host(ssl, "localhost");
  if (*session) SSL_set_session(ssl, *session);
  char b = 0;
  if (SSL_connect(ssl) != 1 || SSL_read(ssl, &b, 1) != 1) {
    ERR_print_errors_fp(stderr);
    exit(1);
  }
  SSL_SESSION *next = SSL_get1_session(ssl); /* TLS 1.3: the ticket read with the byte */
  SSL_SESSION_free(*session);
  *session = next;
  SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(ssl);
  close(fd);
  return b == 'r';
}

static int raw_handshake(int port, double secs, const char *mode, const char *ver) {
  int resume = strcmp(mode, "resumed") == 0;
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  int v = strcmp(ver, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
  SSL_CTX_set_min_proto_version(ctx, v);
  SSL_CTX_set_max_proto_version(ctx, v);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_self_signed);
  SSL_SESSION *session = NULL;
  raw_hello(ctx, port, &session); /* warm-up, and the first session */
  uint64_t n = 0, resumed = 0;
  double c0 = cpu_s(), t0 = now_s(), t;
  do {
    if (!resume) {
      SSL_SESSION_free(session);
      session = NULL;
    }
    resumed += (uint64_t)raw_hello(ctx, port, &session);
    n++;
  } while ((t = now_s() - t0) < secs);
  RESULT((double)n / t, "hs/s");
  CPU(cpu_s() - c0);
  EXTRA("resumed_fraction", (double)resumed / (double)n, "");
  return 0;
}

struct econn {
  int fd;
  size_t got;
};

static int echo_client(int port, int conns, double secs, size_t size, double warm) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct econn *cs = calloc((size_t)conns, sizeof *cs);
  char *msg = malloc(size), *in = malloc(65536);
  memset(msg, 'e', size);
  for (int i = 0; i < conns; i++) {
    cs[i].fd = tcp_connect(port);
    if (cs[i].fd < 0) die("connect");
    set_nodelay(cs[i].fd);
    fcntl(cs[i].fd, F_SETFL, O_NONBLOCK);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &cs[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &e);
  }
  uint64_t done = 0, done_at_warm = 0;
  double start = now_s(), t_warm = start + warm, t_end = t_warm + secs, c0 = 0;
  int warmed = 0;
  for (int i = 0; i < conns; i++)
    if (write(cs[i].fd, msg, size) != (ssize_t)size) die("write");
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, 10);
    for (int i = 0; i < n; i++) {
      struct econn *c = evs[i].data.ptr;
      ssize_t r = read(c->fd, in, 65536);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        die("read");
      }
      c->got += (size_t)r;
      if (c->got >= size) {
        c->got = 0;
        done++;
        if (write(c->fd, msg, size) != (ssize_t)size) die("write");
      }
    }
    double t = now_s();
    if (!warmed && t >= t_warm) {
      warmed = 1;
      done_at_warm = done;
      c0 = cpu_s();
      t_warm = t;
    }
    if (t >= t_end) {
      RESULT((double)(done - done_at_warm) / (t - t_warm), "req/s");
      CPU(cpu_s() - c0);
      return 0;
    }
  }
}

/* ---- latency: a thread parked in epoll_wait; the main thread writes 1 byte on the peer socket. */
static int lat_ep, lat_fd;
static _Atomic uint64_t lat_t1, lat_n;
static sem_t lat_done;

static void *lat_thread(void *arg) {
  (void)arg;
  struct epoll_event ev;
  char b[16];
  for (;;) {
    int n = epoll_wait(lat_ep, &ev, 1, -1);
    if (n <= 0) continue;
    if (read(lat_fd, b, sizeof b) < 0) die("read");
    atomic_store(&lat_t1, now_ns()); /* the data is in hand: where a callback would start */
    atomic_fetch_add(&lat_n, 1);
    sem_post(&lat_done);
  }
  return NULL;
}

static void lat_arm(void) {
  char b;
  if (read(lat_fd, &b, 1) != -1 || errno != EAGAIN) die("expected EAGAIN");
  struct epoll_event e = {.events = EPOLLIN | EPOLLONESHOT, .data.u32 = 0};
  epoll_ctl(lat_ep, EPOLL_CTL_MOD, lat_fd, &e);
}

static int latency(int samples) {
  int port, lfd = tcp_listen_any(&port);
  lat_fd = tcp_connect(port);
  int peer = accept(lfd, NULL, NULL);
  if (lat_fd < 0 || peer < 0) die("connect");
  set_nodelay(peer);
  fcntl(lat_fd, F_SETFL, O_NONBLOCK);
  lat_ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event e = {.events = 0, .data.u32 = 0};
  epoll_ctl(lat_ep, EPOLL_CTL_ADD, lat_fd, &e);
  sem_init(&lat_done, 0, 0);
  pthread_t th;
  pthread_create(&th, NULL, lat_thread, NULL);
  uint64_t *arr = malloc(sizeof(uint64_t) * (size_t)samples);
  uint64_t *beg = malloc(sizeof(uint64_t) * (size_t)samples);
  uint64_t *hot = malloc(sizeof(uint64_t) * (size_t)samples);
  char one = '1';
  for (int i = 0; i < samples; i++) { /* data arrival -> handler */
    lat_arm();
    sleep_gap_us(500, 1500);
    uint64_t t0 = now_ns();
    if (write(peer, &one, 1) != 1) die("write");
    sem_wait(&lat_done);
    arr[i] = atomic_load(&lat_t1) - t0;
  }
  for (int i = 0; i < samples; i++) { /* "begin" (try read, arm) -> handler, data sent right after */
    sleep_gap_us(500, 1500);
    uint64_t tb = now_ns();
    lat_arm();
    if (write(peer, &one, 1) != 1) die("write");
    sem_wait(&lat_done);
    beg[i] = atomic_load(&lat_t1) - tb;
  }
  uint64_t last = now_ns();
  for (int i = 0; i < samples; i++) { /* hot: the next byte HOT_GAP_NS after the last handler */
    lat_arm();
    uint64_t n0 = atomic_load(&lat_n);
    spin_until_ns(last + HOT_GAP_NS);
    uint64_t t0 = now_ns();
    if (write(peer, &one, 1) != 1) die("write");
    while (atomic_load(&lat_n) == n0) cpu_relax();
    last = now_ns();
    hot[i] = atomic_load(&lat_t1) - t0;
  }
  RESULT(percentile(arr, (size_t)samples, 50) / 1e3, "us");
  EXTRA("p99", percentile(arr, (size_t)samples, 99) / 1e3, "us");
  EXTRA("begin_p50", percentile(beg, (size_t)samples, 50) / 1e3, "us");
  EXTRA("begin_p99", percentile(beg, (size_t)samples, 99) / 1e3, "us");
  EXTRA("hot_p50", percentile(hot, (size_t)samples, 50) / 1e3, "us");
  EXTRA("hot_p99", percentile(hot, (size_t)samples, 99) / 1e3, "us");
  return 0;
}

static int memory(int port, int conns) {
  raise_nofile();
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int *fds = malloc(sizeof(int) * (size_t)conns);
  long r0 = rss_bytes();
  for (int i = 0; i < conns; i++) {
    fds[i] = tcp_connect(port);
    if (fds[i] < 0) die("connect");
    fcntl(fds[i], F_SETFL, O_NONBLOCK);
  }
  long r1 = rss_bytes();
  for (int i = 0; i < conns; i++) {
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
  }
  long r2 = rss_bytes();
  RESULT((double)(r1 - r0) / conns, "B/conn");
  EXTRA("pending", (double)(r2 - r1) / conns, "B/op");
  for (int i = 0; i < conns; i++) close_reset(fds[i]);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  const char *m = argc > 1 ? argv[1] : "";
  if (!strcmp(m, "write") && argc == 5)
    return bulk_write(atoi(argv[2]), strtoull(argv[3], 0, 10), strtoul(argv[4], 0, 10));
  if (!strcmp(m, "sendfile") && argc == 4) return bulk_sendfile(atoi(argv[2]), argv[3]);
  if (!strcmp(m, "tls") && argc >= 5)
    return bulk_tls(atoi(argv[2]), strtoull(argv[3], 0, 10), strtoul(argv[4], 0, 10),
                    argc > 5 ? argv[5] : "1.3", argc > 6 ? argv[6] : NULL);
  if (!strcmp(m, "handshake") && argc == 6) return raw_handshake(atoi(argv[2]), atof(argv[3]), argv[4], argv[5]);
  if (!strcmp(m, "echo") && argc == 7)
    return echo_client(atoi(argv[2]), atoi(argv[3]), atof(argv[4]), strtoul(argv[5], 0, 10),
                       atof(argv[6]));
  if (!strcmp(m, "latency") && argc == 3) return latency(atoi(argv[2]));
  if (!strcmp(m, "memory") && argc == 4) return memory(atoi(argv[2]), atoi(argv[3]));
  fprintf(stderr, "usage: see the comment at the top of raw.c\n");
  return 2;
}
