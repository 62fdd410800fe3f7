/* uv.c: the libuv peer (Debian's libuv1-dev).
 *
 *   uv write   PORT MIB BUF              uv_write of BUF-byte chunks, the next one queued from the
 *                                        write callback (1 in flight), MIB MiB to the sink
 *   uv echo    PORT CONNS SECS SIZE WARM echo client, one request outstanding per connection
 *   uv latency SAMPLES                   data arrival (peer thread's write) -> read callback
 *   uv memory  PORT CONNS                RSS per connected uv_tcp_t, and per started read
 *
 * Output as in raw.c.
 */
#include "common.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <uv.h>

static uv_loop_t *loop;

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, uv_strerror(rc));
    exit(1);
  }
}

static int g_connected;
static void connect_cb(uv_connect_t *req, int status) {
  check(status, "connect");
  g_connected = 1;
  free(req);
}

static void connect_sync(uv_tcp_t *t, int port) {
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", port, &a);
  uv_connect_t *req = malloc(sizeof *req);
  g_connected = 0;
  check(uv_tcp_init(loop, t), "uv_tcp_init");
  check(uv_tcp_connect(req, t, (const struct sockaddr *)&a, connect_cb), "uv_tcp_connect");
  while (!g_connected) uv_run(loop, UV_RUN_ONCE);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  static char slab[65536];
  *buf = uv_buf_init(slab, sizeof slab);
}

/* ---------------------------------------------------------------- bulk write */
static struct {
  uv_tcp_t tcp;
  uv_write_t req;
  char *buf;
  size_t bufsz;
  uint64_t left;
  unsigned char hdr[8];
  double t0, c0;
  uint64_t total;
} bw;

static void bw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n == 0) return;
  if (n < 0) check((int)n, "ack");
  double t = now_s() - bw.t0;
  RESULT(bw.total / t / 1e9, "GB/s");
  CPU(cpu_s() - bw.c0);
  uv_read_stop(s);
  uv_close((uv_handle_t *)s, NULL);
}

static void bw_write_cb(uv_write_t *req, int status) {
  check(status, "uv_write");
  if (bw.left == 0) {
    check(uv_read_start((uv_stream_t *)&bw.tcp, alloc_cb, bw_read), "uv_read_start");
    return;
  }
  size_t n = bw.left < bw.bufsz ? (size_t)bw.left : bw.bufsz;
  bw.left -= n;
  uv_buf_t b = uv_buf_init(bw.buf, (unsigned)n);
  check(uv_write(req, (uv_stream_t *)&bw.tcp, &b, 1, bw_write_cb), "uv_write");
}

static int bulk_write(int port, uint64_t mib, size_t bufsz) {
  connect_sync(&bw.tcp, port);
  bw.buf = malloc(bufsz);
  memset(bw.buf, 'x', bufsz);
  bw.bufsz = bufsz;
  bw.total = bw.left = mib << 20;
  put_le64(bw.hdr, bw.total);
  bw.c0 = cpu_s();
  bw.t0 = now_s();
  uv_buf_t b = uv_buf_init((char *)bw.hdr, 8);
  check(uv_write(&bw.req, (uv_stream_t *)&bw.tcp, &b, 1, bw_write_cb), "uv_write");
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}

/* ---------------------------------------------------------------- echo */
struct econn {
  uv_tcp_t tcp;
  uv_write_t wreq;
  size_t got;
};
static char *e_msg;
static size_t e_size;
static uint64_t e_done, e_done_warm;
static double e_t_warm, e_c0;
static int e_stop;

static void e_send(struct econn *c);

static void e_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  struct econn *c = (struct econn *)s;
  if (n < 0) check((int)n, "read");
  c->got += (size_t)n;
  if (c->got >= e_size) {
    c->got = 0;
    e_done++;
    if (!e_stop) e_send(c);
  }
}

static void e_write_cb(uv_write_t *req, int status) {
  (void)req;
  check(status, "uv_write");
}

static void e_send(struct econn *c) {
  uv_buf_t b = uv_buf_init(e_msg, (unsigned)e_size);
  check(uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, e_write_cb), "uv_write");
}

static void e_warm_cb(uv_timer_t *t) {
  (void)t;
  e_done_warm = e_done;
  e_t_warm = now_s();
  e_c0 = cpu_s();
}

static void e_end_cb(uv_timer_t *t) {
  double now = now_s();
  RESULT((double)(e_done - e_done_warm) / (now - e_t_warm), "req/s");
  CPU(cpu_s() - e_c0);
  e_stop = 1;
  uv_stop(t->loop);
}

static int echo_client(int port, int conns, double secs, size_t size, double warm) {
  struct econn *cs = calloc((size_t)conns, sizeof *cs);
  e_msg = malloc(size);
  memset(e_msg, 'e', size);
  e_size = size;
  for (int i = 0; i < conns; i++) {
    connect_sync(&cs[i].tcp, port);
    uv_tcp_nodelay(&cs[i].tcp, 1);
    check(uv_read_start((uv_stream_t *)&cs[i].tcp, alloc_cb, e_read), "uv_read_start");
  }
  uv_timer_t tw, te;
  uv_timer_init(loop, &tw);
  uv_timer_init(loop, &te);
  uv_timer_start(&tw, e_warm_cb, (uint64_t)(warm * 1000), 0);
  uv_timer_start(&te, e_end_cb, (uint64_t)((warm + secs) * 1000), 0);
  for (int i = 0; i < conns; i++) e_send(&cs[i]);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}

/* ---------------------------------------------------------------- latency */
static _Atomic uint64_t l_t1, l_n;
static sem_t l_done;

static void l_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  uint64_t t1 = now_ns();
  (void)s;
  (void)b;
  if (n == 0) return;
  if (n < 0) check((int)n, "read");
  atomic_store(&l_t1, t1);
  atomic_fetch_add(&l_n, 1);
  sem_post(&l_done);
}

static uv_tcp_t l_tcp;
static void *l_loop_thread(void *arg) {
  (void)arg;
  check(uv_read_start((uv_stream_t *)&l_tcp, alloc_cb, l_read), "uv_read_start");
  uv_run(loop, UV_RUN_DEFAULT);
  return NULL;
}

static int latency(int samples) {
  int port, lfd = tcp_listen_any(&port);
  connect_sync(&l_tcp, port);
  int peer = accept(lfd, NULL, NULL);
  if (peer < 0) die("accept");
  set_nodelay(peer);
  sem_init(&l_done, 0, 0);
  pthread_t th;
  pthread_create(&th, NULL, l_loop_thread, NULL);
  uint64_t *arr = malloc(sizeof(uint64_t) * (size_t)samples);
  char one = '1';
  for (int i = 0; i < samples; i++) {
    sleep_gap_us(500, 1500);
    uint64_t t0 = now_ns();
    if (write(peer, &one, 1) != 1) die("write");
    sem_wait(&l_done);
    arr[i] = atomic_load(&l_t1) - t0;
  }
  uint64_t *hot = malloc(sizeof(uint64_t) * (size_t)samples), last = now_ns();
  for (int i = 0; i < samples; i++) { /* hot: the next byte HOT_GAP_NS after the last callback */
    uint64_t n0 = atomic_load(&l_n);
    spin_until_ns(last + HOT_GAP_NS);
    uint64_t t0 = now_ns();
    if (write(peer, &one, 1) != 1) die("write");
    while (atomic_load(&l_n) == n0) cpu_relax();
    last = now_ns();
    hot[i] = atomic_load(&l_t1) - t0;
  }
  RESULT(percentile(arr, (size_t)samples, 50) / 1e3, "us");
  EXTRA("p99", percentile(arr, (size_t)samples, 99) / 1e3, "us");
  EXTRA("hot_p50", percentile(hot, (size_t)samples, 50) / 1e3, "us");
  EXTRA("hot_p99", percentile(hot, (size_t)samples, 99) / 1e3, "us");
  fflush(stdout);
  _exit(0);
}

/* ---------------------------------------------------------------- memory */
static void m_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)s;
  (void)n;
  (void)b;
}

static int memory(int port, int conns) {
  raise_nofile();
  uv_tcp_t *ts = malloc(sizeof(uv_tcp_t) * (size_t)conns); /* allocated up front, touched below */
  uv_tcp_t warm;
  connect_sync(&warm, port); /* runtime warm-up: first connect */
  long r0 = rss_bytes();
  for (int i = 0; i < conns; i++) connect_sync(&ts[i], port);
  long r1 = rss_bytes();
  for (int i = 0; i < conns; i++)
    check(uv_read_start((uv_stream_t *)&ts[i], alloc_cb, m_read), "uv_read_start");
  uv_run(loop, UV_RUN_NOWAIT);
  long r2 = rss_bytes();
  RESULT((double)(r1 - r0) / conns, "B/conn");
  EXTRA("pending", (double)(r2 - r1) / conns, "B/op");
  for (int i = 0; i < conns; i++) {
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&ts[i], &fd) == 0) close_reset(fd);
  }
  fflush(stdout);
  _exit(0);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  loop = uv_default_loop();
  const char *m = argc > 1 ? argv[1] : "";
  if (!strcmp(m, "write") && argc == 5)
    return bulk_write(atoi(argv[2]), strtoull(argv[3], 0, 10), strtoul(argv[4], 0, 10));
  if (!strcmp(m, "echo") && argc == 7)
    return echo_client(atoi(argv[2]), atoi(argv[3]), atof(argv[4]), strtoul(argv[5], 0, 10),
                       atof(argv[6]));
  if (!strcmp(m, "latency") && argc == 3) return latency(atoi(argv[2]));
  if (!strcmp(m, "memory") && argc == 4) return memory(atoi(argv[2]), atoi(argv[3]));
  fprintf(stderr, "usage: see the comment at the top of uv.c\n");
  return 2;
}
