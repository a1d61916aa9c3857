/* mqload: an independent MQTT load generator on libmosquitto (Debian's libmosquitto-dev).
 * N publishers send K messages each; M subscribers (plain, or in one $share group) receive them.
 * Prints one JSON line: throughput, latency percentiles, missing and duplicate counts.
 * Build: cc -O2 -o mqload mqload.c -lmosquitto -lpthread
 * Vendored into fleetq's bench/ from the project's shared tools (mqload.c); built and run by bench/mqload.ts.
 * Local change: --slow-ms T counts deliveries slower than T ms ("slow" in the output) and p999_ms is printed,
 * for the latency-stall benchmark (bench/latency.ts); the wait for subscribers' SUBACKs is bounded by --timeout
 * (at least 10 s) instead of a fixed 10 s, and past 64 subscribers they are served by 8 poll(2) threads (see
 * POLL_MODE_SUBS), for bench/curves.ts's 1,000 subscribers. */
#include <mosquitto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <getopt.h>
#include <poll.h>

static const char *host = "127.0.0.1";
static int port = 1883, npub = 1, nsub = 1, qos = 0, size = 64, inflight = 100;
static long kmsg = 10000;
static const char *topic = "bench/t";
static const char *share = NULL;   /* shared-subscription group */
static int wildcard = 0;           /* subscribers use topic/# */
static double timeout_s = 60;
static double rate = 0;            /* messages per second per publisher; 0: as fast as the window allows */
static const char *user = NULL, *pass = NULL;
static double slow_ms = 5;         /* deliveries slower than this are counted as "slow" */

static atomic_long received, dups, connected_subs, acked_pubs;
static uint8_t **seen;              /* seen[pub][seq] */
static uint32_t *lat_us;            /* latency samples */
static atomic_long nlat;
static long lat_cap;

static double now_s(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static uint64_t now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec; }

static void on_sub_connect(struct mosquitto *m, void *ud, int rc) {
  if (rc) { fprintf(stderr, "subscriber connect refused: %d\n", rc); exit(3); }
  char filt[512];
  if (share) snprintf(filt, sizeof filt, "$share/%s/%s%s", share, topic, wildcard ? "/#" : "/+");
  else snprintf(filt, sizeof filt, "%s%s", topic, wildcard ? "/#" : "/+");
  mosquitto_subscribe(m, NULL, filt, qos);
}
static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *g) {
  if (n < 1 || g[0] > 2) { fprintf(stderr, "subscription refused (granted %d)\n", n ? g[0] : -1); exit(3); }
  atomic_fetch_add(&connected_subs, 1);
}
static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg) {
  if (msg->payloadlen < 16) return;
  uint64_t sent; uint32_t pub, seq;
  memcpy(&sent, msg->payload, 8); memcpy(&pub, (char *)msg->payload + 8, 4); memcpy(&seq, (char *)msg->payload + 12, 4);
  if (pub >= (uint32_t)npub || seq >= (uint32_t)kmsg) return;
  long idx = atomic_fetch_add(&nlat, 1);
  if (idx < lat_cap) lat_us[idx] = (uint32_t)((now_ns() - sent) / 1000);
  if (!share) { atomic_fetch_add(&received, 1); return; }
  uint8_t prev = __atomic_fetch_add(&seen[pub][seq], 1, __ATOMIC_RELAXED);
  if (prev) atomic_fetch_add(&dups, 1); else atomic_fetch_add(&received, 1);
}
struct pubarg { int id; struct mosquitto *m; atomic_long acked; };

static void on_publish(struct mosquitto *m, void *ud, int mid) { atomic_fetch_add(&acked_pubs, 1); if (ud) atomic_fetch_add(&((struct pubarg *)ud)->acked, 1); }
static int cmp(const void *a, const void *b) { uint32_t x = *(uint32_t *)a, y = *(uint32_t *)b; return x < y ? -1 : x > y; }


static void *pub_thread(void *p) {
  struct pubarg *a = p;
  char *buf = calloc(1, size < 16 ? 16 : size);
  char t[256]; snprintf(t, sizeof t, "%s/%d", topic, a->id);
  double t0 = now_s();
  for (long i = 0; i < kmsg; i++) {
    if (rate > 0) { double due = t0 + i / rate; double w = due - now_s(); if (w > 0) usleep((useconds_t)(w * 1e6)); }
    if (qos > 0) { while (i - atomic_load(&a->acked) >= inflight) usleep(20); }
    uint64_t ts = now_ns(); uint32_t id = a->id, seq = (uint32_t)i;
    memcpy(buf, &ts, 8); memcpy(buf + 8, &id, 4); memcpy(buf + 12, &seq, 4);
    int rc;
    while ((rc = mosquitto_publish(a->m, NULL, t, size < 16 ? 16 : size, buf, qos, false)) == MOSQ_ERR_OVERSIZE_PACKET || rc == MOSQ_ERR_NOMEM) usleep(100);
    if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "publish failed: %s\n", mosquitto_strerror(rc)); exit(4); }
    /* QoS 0: keep the client's own queue bounded so the figure measures the broker, not memory */
    if (qos == 0 && (i & 255) == 255) { while (mosquitto_want_write(a->m)) usleep(50); }
  }
  free(buf);
  return NULL;
}

/* Past POLL_MODE_SUBS subscribers, they are served by POLL_THREADS threads with poll(2) instead of a
 * mosquitto_loop_start() thread each: libmosquitto's own loop uses select(2), which cannot watch a
 * descriptor above FD_SETSIZE (1024), and each client holds three (its socket and a socket pair), so
 * the 340th client's loop would fail. Each poll thread alone owns its subscribers after they connect. */
#define POLL_MODE_SUBS 64
#define POLL_THREADS 8
static atomic_int stop_polling;
struct subslice { struct mosquitto **m; int count; };
static void *poll_thread(void *p) {
  struct subslice *s = p;
  struct pollfd *fds = calloc(s->count, sizeof *fds);
  while (!atomic_load(&stop_polling)) {
    for (int i = 0; i < s->count; i++) {
      fds[i].fd = mosquitto_socket(s->m[i]);
      fds[i].events = POLLIN | (mosquitto_want_write(s->m[i]) ? POLLOUT : 0);
      fds[i].revents = 0;
    }
    if (poll(fds, s->count, 10) < 0) continue;
    for (int i = 0; i < s->count; i++) {
      if (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) mosquitto_loop_read(s->m[i], 1);
      if (fds[i].revents & POLLOUT) mosquitto_loop_write(s->m[i], 1);
      mosquitto_loop_misc(s->m[i]);
    }
  }
  free(fds);
  return NULL;
}

int main(int argc, char **argv) {
  static struct option o[] = {{"host",1,0,'h'},{"port",1,0,'p'},{"pubs",1,0,'P'},{"subs",1,0,'S'},{"qos",1,0,'q'},
    {"msgs",1,0,'k'},{"size",1,0,'s'},{"topic",1,0,'t'},{"share",1,0,'g'},{"wildcard",0,0,'w'},{"timeout",1,0,'T'},
    {"inflight",1,0,'i'},{"rate",1,0,'r'},{"user",1,0,'u'},{"pass",1,0,'x'},{"slow-ms",1,0,'l'},{0,0,0,0}};
  int c;
  while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) switch (c) {
    case 'h': host = optarg; break; case 'p': port = atoi(optarg); break; case 'P': npub = atoi(optarg); break;
    case 'S': nsub = atoi(optarg); break; case 'q': qos = atoi(optarg); break; case 'k': kmsg = atol(optarg); break;
    case 's': size = atoi(optarg); break; case 't': topic = optarg; break; case 'g': share = optarg; break;
    case 'w': wildcard = 1; break; case 'T': timeout_s = atof(optarg); break; case 'i': inflight = atoi(optarg); break; case 'r': rate = atof(optarg); break;
    case 'u': user = optarg; break; case 'x': pass = optarg; break; case 'l': slow_ms = atof(optarg); break;
    default: fprintf(stderr, "usage: mqload [--host H] [--port P] [--pubs N] [--subs M] [--qos 0|1] [--msgs K] [--size B] [--share GROUP] [--wildcard] [--rate R] [--inflight W] [--slow-ms T]\n"); return 2;
  }
  mosquitto_lib_init();
  long expected = share ? npub * kmsg : npub * kmsg * nsub;
  lat_cap = expected < 2000000 ? expected : 2000000;
  lat_us = malloc(sizeof(uint32_t) * lat_cap);
  seen = calloc(npub, sizeof(uint8_t *));
  for (int i = 0; i < npub; i++) seen[i] = calloc(kmsg, 1);
  char id[64];
  struct mosquitto **subs = calloc(nsub, sizeof *subs);
  struct subslice slices[POLL_THREADS];
  pthread_t pollers[POLL_THREADS];
  int poll_mode = nsub > POLL_MODE_SUBS;
  struct pubarg *args = calloc(npub, sizeof *args);
  struct mosquitto **pubs = calloc(npub, sizeof *pubs);
  pthread_t *th = calloc(npub, sizeof *th);
  /* In poll mode the publishers connect first, so their select(2) loops get descriptors below 1024. */
  for (int round = 0; round < 2; round++) {
    if (round == (poll_mode ? 0 : 1)) {
      for (int i = 0; i < npub; i++) {
        snprintf(id, sizeof id, "mqload-pub-%d-%d", getpid(), i);
        pubs[i] = mosquitto_new(id, true, &args[i]);
        if (user) mosquitto_username_pw_set(pubs[i], user, pass);
        mosquitto_max_inflight_messages_set(pubs[i], inflight);
        mosquitto_publish_callback_set(pubs[i], on_publish);
        if (mosquitto_connect(pubs[i], host, port, 60)) { fprintf(stderr, "cannot connect publisher\n"); return 3; }
        mosquitto_loop_start(pubs[i]);
      }
      continue;
    }
    for (int i = 0; i < nsub; i++) {
      snprintf(id, sizeof id, "mqload-sub-%d-%d", getpid(), i);
      subs[i] = mosquitto_new(id, true, NULL);
      if (user) mosquitto_username_pw_set(subs[i], user, pass);
      mosquitto_connect_callback_set(subs[i], on_sub_connect);
      mosquitto_subscribe_callback_set(subs[i], on_subscribe);
      mosquitto_message_callback_set(subs[i], on_message);
      if (mosquitto_connect(subs[i], host, port, 60)) { fprintf(stderr, "cannot connect to %s:%d\n", host, port); return 3; }
      if (!poll_mode) mosquitto_loop_start(subs[i]);
    }
    if (poll_mode) {
      for (int t = 0; t < POLL_THREADS; t++) {
        int first = (int)((long)nsub * t / POLL_THREADS), end = (int)((long)nsub * (t + 1) / POLL_THREADS);
        slices[t].m = subs + first; slices[t].count = end - first;
        pthread_create(&pollers[t], NULL, poll_thread, &slices[t]);
      }
    }
    double t0 = now_s();
    /* Many subscribers (bench/curves.ts goes to 1,000) take longer than 10 s to connect to a slow broker: --timeout bounds the wait too. */
    double ready_s = timeout_s > 10 ? timeout_s : 10;
    while (atomic_load(&connected_subs) < nsub) { if (now_s() - t0 > ready_s) { fprintf(stderr, "subscribers not ready (%ld of %d)\n", atomic_load(&connected_subs), nsub); return 3; } usleep(1000); }
  }
  usleep(200000);
  double start = now_s();
  for (int i = 0; i < npub; i++) { args[i].id = i; args[i].m = pubs[i]; pthread_create(&th[i], NULL, pub_thread, &args[i]); }
  for (int i = 0; i < npub; i++) pthread_join(th[i], NULL);
  double pub_done = now_s();
  long last = -1; double last_change = now_s();
  while (atomic_load(&received) < expected) {
    long r = atomic_load(&received);
    if (r != last) { last = r; last_change = now_s(); }
    if (now_s() - last_change > 3 || now_s() - start > timeout_s) break;
    usleep(1000);
  }
  double end = now_s();
  long got = atomic_load(&received), nl = atomic_load(&nlat); if (nl > lat_cap) nl = lat_cap;
  qsort(lat_us, nl, sizeof(uint32_t), cmp);
  double p50 = nl ? lat_us[nl / 2] / 1000.0 : -1, p99 = nl ? lat_us[(long)(nl * 0.99)] / 1000.0 : -1, mx = nl ? lat_us[nl - 1] / 1000.0 : -1;
  double secs = (got >= expected ? end : last_change) - start;
  double p999 = nl ? lat_us[(long)(nl * 0.999)] / 1000.0 : -1;
  long slow = 0; /* samples are sorted: count from the top down */
  for (long i = nl - 1; i >= 0 && lat_us[i] > slow_ms * 1000; i--) slow++;
  printf("{\"pubs\":%d,\"subs\":%d,\"qos\":%d,\"size\":%d,\"share\":%s,\"expected\":%ld,\"received\":%ld,\"missing\":%ld,\"dups\":%ld,"
         "\"seconds\":%.3f,\"publish_seconds\":%.3f,\"msgs_per_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
         "\"p999_ms\":%.3f,\"slow_ms\":%.3f,\"slow\":%ld,\"samples\":%ld}\n",
         npub, nsub, qos, size, share ? "true" : "false", expected, got, expected - got, atomic_load(&dups), secs, pub_done - start,
         got / secs, p50, p99, mx, p999, slow_ms, slow, nl);
  for (int i = 0; i < npub; i++) { mosquitto_disconnect(pubs[i]); mosquitto_loop_stop(pubs[i], true); }
  if (poll_mode) { atomic_store(&stop_polling, 1); for (int t = 0; t < POLL_THREADS; t++) pthread_join(pollers[t], NULL); }
  for (int i = 0; i < nsub; i++) { mosquitto_disconnect(subs[i]); if (!poll_mode) mosquitto_loop_stop(subs[i], true); }
  return got >= expected ? 0 : 1;
}
