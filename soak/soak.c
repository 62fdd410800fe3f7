/*
 * soak: many connections doing Begin/End round trips for a bounded time, through the C API only.
 *
 *   soak SERVERS            SERVERS: the benches/c/servers.c binary (echo, tlssink, gencert)
 *
 * Environment: SOAK_CONNS (default 10000) echo connections, SOAK_SECONDS (60) of steady state,
 * SOAK_TLS (8) TLS sessions at a time, SOAK_RSS_SLACK_MB (32) the RSS growth allowed.
 *
 * It starts the epoll echo server and the TLS sink of benches/c/servers.c as child processes,
 * raises RLIMIT_NOFILE to its hard limit (fewer connections when even that is too low: it says
 * so), and connects SOAK_CONNS sockets with BeginConnect. Each connection runs a chain of
 * BeginWrite/BeginRead on its NetworkStream: a message of 1 to 1024 bytes of its own pattern,
 * read back and compared byte for byte, and again. Meanwhile SOAK_TLS chains connect to the TLS
 * sink, authenticate (BeginAuthenticateAsClient, the sink's certificate as the only trusted CA),
 * send a length-prefixed message, read the 1-byte reply and close, again and again. Every chain
 * uses the CompletedSynchronously idiom of examples-c/echo_server.c.
 *
 * Steady state starts when every connection has made its first round trip; RSS (/proc/self/statm)
 * is sampled then and at the end. Then every chain stops after its round, every stream is closed
 * and the runtime shut down. Checked, and the exit status (0 pass, 1 fail): every callback ran
 * exactly once per Begin that returned APM_OK, every byte came back as sent, no operation failed,
 * every chain finished (no hang), RSS grew by at most SOAK_RSS_SLACK_MB over the steady state, and
 * the process holds exactly the file descriptors it held before its first apmnet call.
 */
#include "common.h" /* benches/c/common.h: now_s, rss_bytes, raise_nofile */

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "apmnet.h"

#define MAX_MSG 1024
#define TLS_MAX_MSG 1024
#define CONNECTING_AT_ONCE 256
#define FD_RESERVE 64

enum kind { ECHO, TLS };
enum stage { CONNECT, AUTH, WRITE, READ, DONE };
static const char *stage_names[] = {"connect", "authenticate", "write", "read", "done"};

typedef struct conn {
    int id;
    enum kind kind;
    enum stage stage;
    apm_socket *socket;
    apm_stream *stream;       /* NetworkStream owning the socket */
    apm_stream *tls;          /* SslStream owning the NetworkStream (TLS chains) */
    atomic_int in_flight;     /* 1 from a Begin that returned APM_OK to its callback */
    uint64_t round, rng;
    size_t len, got, expect;  /* this round: bytes sent, read back, expected back */
    uint8_t tx[8 + MAX_MSG], rx[8 + MAX_MSG];
} conn;

static struct {
    int echo_port, tls_port;
    char cert[256];
    atomic_int stopping;
    atomic_long begins, callbacks, double_callbacks, failures, bad_data, rounds, tls_rounds, bytes;
    atomic_int active, connecting, warmed;
} g;

static _Thread_local int continue_inline;
static void on_io(apm_async_result *result, void *state);

static long rss_kib(void) { return rss_bytes() / 1024; }

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

static long env_long(const char *name, long fallback) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : fallback;
}

static uint64_t next(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void fail(conn *c, const char *what, apm_status st) {
    char msg[512] = "";
    size_t len = 0;
    apm_last_error_message(msg, sizeof msg, &len);
    if (atomic_fetch_add(&g.failures, 1) < 10)
        fprintf(stderr, "soak: %s %d, %s (round %llu): %s: %s\n", c->kind == TLS ? "tls" : "echo", c->id, what,
                (unsigned long long)c->round, apm_status_name(st), msg);
}

/* The next message: its bytes come from the connection's own sequence. */
static void prepare(conn *c) {
    c->rng = ((uint64_t)c->id << 32 | (c->round + 1)) * 0x9E3779B97F4A7C15ull | 1;
    size_t payload = 1 + next(&c->rng) % (c->kind == TLS ? TLS_MAX_MSG : MAX_MSG);
    size_t header = 0;
    if (c->kind == TLS) { /* the sink's framing: an 8-byte little-endian length, then the bytes */
        for (int i = 0; i < 8; i++)
            c->tx[i] = (uint8_t)((uint64_t)payload >> (8 * i));
        header = 8;
    }
    for (size_t i = 0; i < payload; i++)
        c->tx[header + i] = (uint8_t)next(&c->rng);
    c->len = header + payload;
    c->expect = c->kind == TLS ? 1 : payload;
    c->got = 0;
}

static apm_stream *io_stream(conn *c) { return c->kind == TLS ? c->tls : c->stream; }

/* The connection's chain is over (stopped or failed): close what it holds. */
static void finish(conn *c) {
    if (c->tls)
        apm_stream_close(c->tls); /* closes the NetworkStream and its socket too */
    else if (c->stream)
        apm_stream_close(c->stream);
    else if (c->socket)
        apm_socket_close(c->socket);
    c->tls = c->stream = NULL;
    c->socket = NULL;
    c->stage = DONE;
    atomic_fetch_sub(&g.active, 1);
}

static apm_status begin(conn *c) {
    apm_async_result *result = NULL;
    apm_status st;
    switch (c->stage) {
    case CONNECT:
        st = apm_socket_create(APM_ADDRESS_FAMILY_INTER_NETWORK, APM_SOCKET_TYPE_STREAM, APM_PROTOCOL_TYPE_TCP,
                               &c->socket);
        if (st != APM_OK)
            return st;
        return apm_socket_begin_connect(c->socket, "127.0.0.1", c->kind == TLS ? g.tls_port : g.echo_port, on_io, c,
                                        &result);
    case AUTH:
        return apm_ssl_stream_begin_authenticate_as_client(c->tls, "localhost", NULL, APM_SSL_PROTOCOLS_NONE, 0,
                                                           on_io, c, &result);
    case WRITE:
        return apm_stream_begin_write(io_stream(c), c->tx, sizeof c->tx, 0, c->len, on_io, c, &result);
    case READ:
        return apm_stream_begin_read(io_stream(c), c->rx, sizeof c->rx, c->got, c->expect - c->got, on_io, c,
                                     &result);
    default:
        return APM_E_INTERNAL;
    }
}

/* Runs the chain's next Begin, and the next, as long as they complete inside Begin. */
static void loop(conn *c) {
    do {
        continue_inline = 0;
        atomic_store(&c->in_flight, 1);
        apm_status st = begin(c);
        if (st != APM_OK) { /* nothing started: no callback */
            atomic_store(&c->in_flight, 0);
            if (c->stage == CONNECT)
                atomic_fetch_sub(&g.connecting, 1);
            fail(c, stage_names[c->stage], st);
            finish(c);
            return;
        }
        atomic_fetch_add(&g.begins, 1);
    } while (continue_inline);
}

/* Ends the operation of the current stage; returns 1 when the chain goes on. */
static int end(conn *c, apm_async_result *result) {
    apm_status st;
    size_t n = 0;
    switch (c->stage) {
    case CONNECT:
        atomic_fetch_sub(&g.connecting, 1);
        if ((st = apm_socket_end_connect(c->socket, result)) != APM_OK)
            break;
        if ((st = apm_network_stream_create(c->socket, 1, &c->stream)) != APM_OK)
            break;
        c->socket = NULL;
        if (c->kind == ECHO) {
            c->stage = WRITE;
            prepare(c);
            return 1;
        }
        if ((st = apm_ssl_stream_create(c->stream, 0, &c->tls)) != APM_OK ||
            (st = apm_ssl_stream_set_trusted_ca_file(c->tls, g.cert)) != APM_OK)
            break;
        c->stage = AUTH;
        return 1;
    case AUTH:
        if ((st = apm_ssl_stream_end_authenticate_as_client(c->tls, result)) != APM_OK)
            break;
        c->stage = WRITE;
        prepare(c);
        return 1;
    case WRITE:
        if ((st = apm_stream_end_write(io_stream(c), result)) != APM_OK)
            break;
        atomic_fetch_add(&g.bytes, (long)c->len);
        c->stage = READ;
        return 1;
    case READ:
        if ((st = apm_stream_end_read(io_stream(c), result, &n)) != APM_OK)
            break;
        if (n == 0) {
            fail(c, "read: the server closed the connection", APM_OK);
            finish(c);
            return 0;
        }
        c->got += n;
        if (c->got < c->expect)
            return 1;
        atomic_fetch_add(&g.bytes, (long)c->got);
        if (c->kind == TLS ? c->rx[0] != 'k' : memcmp(c->rx, c->tx, c->len) != 0) {
            if (atomic_fetch_add(&g.bad_data, 1) < 10)
                fprintf(stderr, "soak: %s %d round %llu: what came back differs from what was sent\n",
                        c->kind == TLS ? "tls" : "echo", c->id, (unsigned long long)c->round);
        }
        if (c->round++ == 0 && c->kind == ECHO)
            atomic_fetch_add(&g.warmed, 1);
        atomic_fetch_add(c->kind == TLS ? &g.tls_rounds : &g.rounds, 1);
        if (atomic_load(&g.stopping)) {
            finish(c);
            return 0;
        }
        if (c->kind == TLS) { /* a new connection and handshake each round */
            apm_stream_close(c->tls);
            c->tls = c->stream = NULL;
            c->stage = CONNECT;
            atomic_fetch_add(&g.connecting, 1);
            return 1;
        }
        c->stage = WRITE;
        prepare(c);
        return 1;
    default:
        st = APM_E_INTERNAL;
    }
    fail(c, stage_names[c->stage], st);
    finish(c);
    return 0;
}

static void on_io(apm_async_result *result, void *state) {
    conn *c = state;
    int32_t sync = 0;
    atomic_fetch_add(&g.callbacks, 1);
    if (atomic_exchange(&c->in_flight, 0) != 1) {
        if (atomic_fetch_add(&g.double_callbacks, 1) < 10)
            fprintf(stderr, "soak: %d: a callback without a pending Begin (stage %s)\n", c->id, stage_names[c->stage]);
        return;
    }
    apm_async_result_completed_synchronously(result, &sync); /* before End releases it */
    if (!end(c, result))
        return;
    if (sync)
        continue_inline = 1;
    else
        loop(c);
}

/* ------------------------------------------------------------------ servers */

static pid_t children[2];
static int nchildren;

/* Runs `servers ARGS...`; with `ready`, reads its "ready PORT" line and returns the port. */
static int run_server(const char *servers, char *const argv[], int ready) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        execv(servers, argv);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    if (!ready) {
        int status = 0;
        close(p[0]);
        waitpid(pid, &status, 0);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
    }
    children[nchildren++] = pid;
    FILE *f = fdopen(p[0], "r");
    int port = -1;
    if (!f || fscanf(f, "ready %d", &port) != 1)
        port = -1;
    if (f)
        fclose(f);
    return port;
}

/* Stops the servers; returns 0 when both were still running (a server that died explains EOFs). */
static int stop_servers(void) {
    int died = 0;
    for (int i = 0; i < nchildren; i++) {
        int status = 0;
        if (waitpid(children[i], &status, WNOHANG) == children[i]) {
            died = 1;
            if (WIFSIGNALED(status))
                fprintf(stderr, "soak: server %d was killed by signal %d\n", (int)children[i], WTERMSIG(status));
            else
                fprintf(stderr, "soak: server %d exited with status %d\n", (int)children[i], WEXITSTATUS(status));
            continue;
        }
        kill(children[i], SIGTERM);
        waitpid(children[i], NULL, 0);
    }
    nchildren = 0;
    return died;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: soak SERVERS (the benches/c/servers.c binary)\n");
        return 2;
    }
    long want = env_long("SOAK_CONNS", 10000), seconds = env_long("SOAK_SECONDS", 60);
    long tls = env_long("SOAK_TLS", 8), slack_mb = env_long("SOAK_RSS_SLACK_MB", 32);
    signal(SIGPIPE, SIG_IGN); /* the library never raises it; the servers' pipes might */

    char dir[] = "/tmp/apmnet-soak-XXXXXX", key[256];
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g.cert, sizeof g.cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    char *gencert[] = {argv[1], "gencert", g.cert, key, NULL};
    char *echo[] = {argv[1], "echo", "0", NULL};
    char *sink[] = {argv[1], "tlssink", g.cert, key, "0", NULL};
    if (run_server(argv[1], gencert, 0) != 0 || (g.echo_port = run_server(argv[1], echo, 1)) <= 0 ||
        (g.tls_port = run_server(argv[1], sink, 1)) <= 0) {
        fprintf(stderr, "soak: cannot start the servers of %s\n", argv[1]);
        stop_servers();
        return 1;
    }

    /* Before the first apmnet call: the descriptors to be back to at the end. */
    int fds_start = count_fds();
    struct rlimit rl;
    raise_nofile();
    getrlimit(RLIMIT_NOFILE, &rl);
    long room = (long)rl.rlim_cur - fds_start - FD_RESERVE - 2 * tls;
    long nconn = want < room ? want : room;
    if (nconn < want)
        printf("soak: RLIMIT_NOFILE %llu (hard limit %llu) leaves room for %ld connections, not %ld: running %ld\n",
               (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, room, want, nconn);
    if (nconn < 1) {
        stop_servers();
        return 1;
    }
    printf("soak: %ld echo connections, %ld TLS sessions at a time, %ld s steady state (nofile %llu)\n", nconn, tls,
           seconds, (unsigned long long)rl.rlim_cur);
    fflush(stdout);

    long total = nconn + tls;
    conn *conns = calloc((size_t)total, sizeof *conns);
    if (!conns) {
        stop_servers();
        return 1;
    }
    double t0 = now_s();
    atomic_store(&g.active, (int)total);
    for (long i = 0; i < total; i++) {
        conn *c = &conns[i];
        c->id = (int)i;
        c->kind = i < nconn ? ECHO : TLS;
        c->stage = CONNECT;
        while (atomic_load(&g.connecting) >= CONNECTING_AT_ONCE)
            usleep(200);
        atomic_fetch_add(&g.connecting, 1);
        loop(c);
    }
    /* Steady state: every echo connection has made a round trip. */
    double deadline = now_s() + 120;
    while (atomic_load(&g.warmed) + (long)atomic_load(&g.failures) < nconn && now_s() < deadline)
        usleep(10000);
    double t_steady = now_s();
    long rss_start = rss_kib(), rss_max = rss_start, rss_min = rss_start;
    int fds_steady = count_fds();
    long rounds_start = atomic_load(&g.rounds), tls_start = atomic_load(&g.tls_rounds);
    printf("soak: steady state after %.1f s: %ld connections up, RSS %ld KiB, %d descriptors\n", t_steady - t0,
           (long)atomic_load(&g.warmed), rss_start, fds_steady);
    fflush(stdout);
    while (now_s() < t_steady + (double)seconds && atomic_load(&g.failures) == 0) {
        usleep(250000);
        long r = rss_kib();
        rss_max = r > rss_max ? r : rss_max;
        rss_min = r < rss_min ? r : rss_min;
    }
    long rss_end = rss_kib();
    double t_end = now_s();
    long rounds = atomic_load(&g.rounds) - rounds_start, tls_rounds = atomic_load(&g.tls_rounds) - tls_start;

    /* Stop: every chain finishes its round and closes. */
    atomic_store(&g.stopping, 1);
    deadline = now_s() + 60;
    while (atomic_load(&g.active) > 0 && now_s() < deadline)
        usleep(10000);
    int stuck = atomic_load(&g.active);
    for (long i = 0, shown = 0; i < total && stuck > 0 && shown < 10; i++)
        if (conns[i].stage != DONE && shown++ < 10)
            fprintf(stderr, "soak: %s %d never finished: stage %s, round %llu\n", conns[i].kind == TLS ? "tls" : "echo",
                    conns[i].id, stage_names[conns[i].stage], (unsigned long long)conns[i].round);
    int fds_closed = count_fds();
    apm_status shut = apm_runtime_shutdown();
    int fds_end = count_fds();
    int servers_died = stop_servers();
    unlink(g.cert);
    unlink(key);
    rmdir(dir);

    long begins = atomic_load(&g.begins), callbacks = atomic_load(&g.callbacks);
    long growth = rss_end - rss_start;
    int rss_ok = growth <= slack_mb * 1024;
    double secs = t_end - t_steady;
    printf("soak: %.1f s steady: %ld echo round trips (%.0f/s), %ld TLS handshakes + round trips (%.0f/s), %.1f MiB "
           "moved in all\n",
           secs, rounds, rounds / secs, tls_rounds, tls_rounds / secs, atomic_load(&g.bytes) / 1048576.0);
    printf("soak: exactly once: %ld Begins that returned APM_OK, %ld callbacks, %ld without a pending Begin\n", begins,
           callbacks, (long)atomic_load(&g.double_callbacks));
    printf("soak: data: %ld round trips came back different; %ld operations failed; %d chains never finished\n",
           (long)atomic_load(&g.bad_data), (long)atomic_load(&g.failures), stuck);
    printf("soak: RSS %ld KiB at steady state, %ld KiB at the end (growth %+ld KiB, allowed %ld MiB; min %ld, max %ld)\n",
           rss_start, rss_end, growth, slack_mb, rss_min, rss_max);
    printf("soak: descriptors: %d before the first apmnet call, %d at steady state, %d with everything closed, %d after "
           "apm_runtime_shutdown (%s)\n",
           fds_start, fds_steady, fds_closed, fds_end, apm_status_name(shut));
    int ok = begins == callbacks && atomic_load(&g.double_callbacks) == 0 && atomic_load(&g.bad_data) == 0 &&
             atomic_load(&g.failures) == 0 && stuck == 0 && rss_ok && shut == APM_OK && fds_end == fds_start &&
             atomic_load(&g.warmed) == nconn && rounds > 0 && tls_rounds > 0 && !servers_died;
    printf("soak: %s\n", ok ? "PASS" : "FAIL");
    free(stuck ? NULL : conns); /* a stuck chain may still use its conn */
    return ok ? 0 : 1;
}
