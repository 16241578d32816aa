/*
 * CuratorBench.java - the Apache Curator side of the zkrecipes peer comparison.
 *
 * Run as a single-file source program (no build step):
 *
 *   java -cp /usr/share/java/curator-recipes.jar bench/peers/CuratorBench.java \
 *        HOSTS ROOT WORKLOADS
 *
 * HOSTS is a ZooKeeper connect string, ROOT a znode prefix that may not exist
 * yet, WORKLOADS a comma list of w1,w2,r1,r2,s1,q1,w3a,w3b,w4,c1,c2,d1 (always run in that
 * order).
 *
 * stdout carries only "RESULT lib=<lib> work=<W> <key>=<value>" lines; progress
 * goes to stderr. Exit status 0 on success, 1 (with a one-line message on
 * stderr) on any unexpected failure, 2 on bad usage.
 *
 * Every workload is first run once in a small, unmeasured form on a separate
 * path (ROOT/warm-...) so that the JIT has compiled the Curator code paths
 * before anything is timed.
 */

import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.cache.PathChildrenCache;
import org.apache.curator.framework.recipes.cache.PathChildrenCacheEvent;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.framework.recipes.queue.DistributedQueue;
import org.apache.curator.framework.recipes.queue.QueueBuilder;
import org.apache.curator.framework.recipes.queue.QueueConsumer;
import org.apache.curator.framework.recipes.queue.QueueSerializer;
import org.apache.curator.framework.recipes.queue.SimpleDistributedQueue;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.x.discovery.ServiceCache;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.ServiceProvider;
import org.apache.curator.x.discovery.details.ServiceCacheListener;
import org.apache.curator.x.discovery.strategies.RoundRobinStrategy;
import org.apache.curator.framework.state.ConnectionState;

public class CuratorBench {

    static final int SESSION_TIMEOUT_MS = 10000;
    static final int CONNECTION_TIMEOUT_MS = 15000;
    static final int CONNECT_WAIT_S = 15;
    /* A bound on a single lock acquisition so that a broken run fails instead of hanging. */
    static final long ACQUIRE_TIMEOUT_S = 60;

    static final int W1_CYCLES = 2000, W1_WARM = 200;
    static final int W2_SESSIONS = 8, W2_CYCLES = 250, W2_WARM = 20;
    static final int W3A_INCREMENTS = 2000, W3A_WARM = 200;
    static final int W3B_SESSIONS = 8, W3B_INCREMENTS = 250, W3B_WARM = 20;
    static final int W4_CANDIDATES = 5, W4_REPEATS = 10, W4_WARM = 2;
    static final long W4_DEADLINE_NS = 30_000_000_000L;

    static String hosts;
    static String root;
    /* Set when a counter increment did not succeed: reported, and the exit status is 1. */
    static final AtomicInteger counterErrors = new AtomicInteger();

    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: java -cp /usr/share/java/curator-recipes.jar CuratorBench.java HOSTS ROOT w1,w2,w3a,w3b,w4");
            System.exit(2);
        }
        hosts = args[0];
        root = args[1];
        while (root.length() > 1 && root.endsWith("/"))
            root = root.substring(0, root.length() - 1);
        if (!root.startsWith("/") || root.equals("/")) {
            System.err.println("CuratorBench: ROOT must be an absolute znode path other than /");
            System.exit(2);
        }
        Set<String> wanted = new LinkedHashSet<>();
        for (String w : args[2].split(",")) {
            w = w.trim().toLowerCase(Locale.ROOT);
            if (w.isEmpty())
                continue;
            if (!Arrays.asList("w1", "w2", "r1", "r2", "s1", "q1", "w3a", "w3b", "w4", "c1", "c2", "d1").contains(w)) {
                System.err.println("CuratorBench: unknown workload '" + w + "' (expected w1,w2,r1,r2,s1,q1,w3a,w3b,w4,c1,c2,d1)");
                System.exit(2);
            }
            wanted.add(w);
        }
        if (wanted.isEmpty()) {
            System.err.println("CuratorBench: no workload given");
            System.exit(2);
        }

        quietSlf4j();
        try {
            if (wanted.contains("w1")) {
                progress("w1 warm-up");
                w1(root + "/warm-w1", W1_WARM, false);
                progress("w1");
                w1(root + "/w1", W1_CYCLES, true);
            }
            if (wanted.contains("w2")) {
                progress("w2 warm-up");
                w2(root + "/warm-w2", W2_SESSIONS, W2_WARM, false);
                progress("w2");
                w2(root + "/w2", W2_SESSIONS, W2_CYCLES, true);
            }
            if (wanted.contains("r1")) {
                progress("r1 warm-up");
                shared("R1", root + "/warm-r1", 8, 0, 10, 0, false);
                progress("r1");
                shared("R1", root + "/r1", 8, 0, 100, 0, true);
            }
            if (wanted.contains("r2")) {
                progress("r2 warm-up");
                shared("R2", root + "/warm-r2", 10, 2, 5, 0, false);
                progress("r2");
                shared("R2", root + "/r2", 10, 2, 50, 0, true);
            }
            if (wanted.contains("s1")) {
                progress("s1 warm-up");
                shared("S1", root + "/warm-s1", 8, 0, 6, 3, false);
                progress("s1");
                shared("S1", root + "/s1", 8, 0, 60, 3, true);
            }
            if (wanted.contains("q1")) {
                progress("q1 warm-up");
                q1(root + "/warm-q1", 40, false);
                progress("q1");
                q1(root + "/q1", Q1_ITEMS, true);
            }
            if (wanted.contains("w3a"))
                w3("w3a", "W3a", 1, W3A_INCREMENTS, W3A_WARM);
            if (wanted.contains("w3b"))
                w3("w3b", "W3b", W3B_SESSIONS, W3B_INCREMENTS, W3B_WARM);
            if (wanted.contains("w4")) {
                progress("w4 warm-up");
                w4(root + "/warm-w4", W4_WARM, false);
                progress("w4");
                w4(root + "/w4", W4_REPEATS, true);
            }
            if (wanted.contains("c1")) {
                progress("c1 warm-up");
                c1(root + "/warm-c1", 50, false);
                progress("c1");
                c1(root + "/c1", 200, true);
            }
            if (wanted.contains("c2")) {
                progress("c2 warm-up");
                c2(root + "/warm-c2", 200, false);
                for (int n : new int[] {1000, 10000}) {
                    progress("c2 " + n);
                    c2(root + "/c2-" + n, n, true);
                }
            }
            if (wanted.contains("d1")) {
                progress("d1 warm-up");
                d1(root + "/warm-d1", 50, 0, 1, false);
                progress("d1");
                d1(root + "/d1", 200, 200000, 5, true);
            }
        } catch (Throwable t) {
            System.out.flush();
            System.err.println("CuratorBench: error: " + describe(t));
            System.exit(1);
        }
        System.out.flush();
        if (counterErrors.get() != 0) {
            System.err.println("CuratorBench: error: " + counterErrors.get()
                    + " counter increment(s) did not succeed or final values were wrong");
            System.exit(1);
        }
        progress("done");
        System.exit(0);
    }

    // ---- what an operation costs, beside its rate (as zkr_bench measures it) ----

    /* Client CPU of this process (every JVM thread: Curator's, ZooKeeper's, the
     * JIT's and GC's) and, from each server of HOSTS, requests and bytes received
     * ("mntr", summed) and transactions (the zxid of "srvr", the most of any). */
    static final class Cost {
        double cpuUs, req, txn, bytes;
        boolean ok = true;

        static Cost now() {
            Cost c = new Cost();
            java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
            if (os instanceof com.sun.management.OperatingSystemMXBean)
                c.cpuUs = ((com.sun.management.OperatingSystemMXBean) os).getProcessCpuTime() / 1e3;
            String list = hosts.contains("/") ? hosts.substring(0, hosts.indexOf('/')) : hosts;
            for (String h : list.split(",")) {
                int colon = h.lastIndexOf(':');
                try {
                    String host = h.substring(0, colon);
                    int port = Integer.parseInt(h.substring(colon + 1));
                    String m = fourLetters(host, port, "mntr"), s = fourLetters(host, port, "srvr");
                    c.req += mntrValue(m, "zk_packets_received\t");
                    c.bytes += mntrValue(m, "zk_bytes_received_count\t");
                    int z = s.indexOf("Zxid: ");
                    if (z < 0 || !m.contains("zk_packets_received"))
                        throw new Exception("no counters");
                    String hex = s.substring(z + 8).split("\\s")[0];
                    c.txn = Math.max(c.txn, (double) (Long.parseUnsignedLong(hex, 16) & 0xffffffffL));
                } catch (Exception e) {
                    c.ok = false;
                }
            }
            return c;
        }

        static String fourLetters(String host, int port, String cmd) throws Exception {
            try (Socket so = new Socket()) {
                so.connect(new InetSocketAddress(host, port), 2000);
                so.setSoTimeout(2000);
                so.getOutputStream().write(cmd.getBytes(StandardCharsets.US_ASCII));
                InputStream in = so.getInputStream();
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
        }

        static double mntrValue(String text, String key) {
            int i = text.indexOf(key);
            if (i < 0)
                return 0;
            String rest = text.substring(i + key.length()).split("\\s")[0];
            return Double.parseDouble(rest);
        }

        /* The RESULT lines for the part between a and b, which did ops operations. */
        static void record(String lib, String work, Cost a, Cost b, double ops) {
            result(lib, work, "cpu_us_per_op", (b.cpuUs - a.cpuUs) / ops);
            if (!a.ok || !b.ok)
                return;
            result(lib, work, "server_requests_per_op", (b.req - a.req) / ops);
            result(lib, work, "server_txns_per_op", (b.txn - a.txn) / ops);
            result(lib, work, "server_bytes_in_per_op", (b.bytes - a.bytes) / ops);
        }
    }

    // ---- W1: uncontended lock ----

    static void w1(String path, int cycles, boolean emit) throws Exception {
        CuratorFramework c = newClient();
        try {
            InterProcessMutex m = new InterProcessMutex(c, path);
            acquire(m); // parents first, outside the clock
            m.release();
            long[] acq = new long[cycles], rel = new long[cycles];
            Cost c0 = emit ? Cost.now() : null;
            long t0 = System.nanoTime();
            for (int i = 0; i < cycles; i++) {
                long a = System.nanoTime();
                acquire(m);
                long b = System.nanoTime();
                m.release();
                long e = System.nanoTime();
                acq[i] = b - a;
                rel[i] = e - b;
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            if (emit) {
                Cost.record("curator", "W1", c0, Cost.now(), cycles);
                result("curator", "W1", "cycles_per_s", cycles / secs);
                result("curator", "W1", "acquire_p50_us", pctUs(acq, 0.5));
                result("curator", "W1", "acquire_p99_us", pctUs(acq, 0.99));
                result("curator", "W1", "release_p50_us", pctUs(rel, 0.5));
                result("curator", "W1", "release_p99_us", pctUs(rel, 0.99));
            }
        } finally {
            c.close();
        }
    }

    // ---- W2: contended lock, one session per thread, zero hold time ----

    static void w2(String path, int n, int per, boolean emit) throws Exception {
        List<CuratorFramework> clients = new ArrayList<>();
        try {
            CuratorFramework first = newClient();
            clients.add(first);
            InterProcessMutex pre = new InterProcessMutex(first, path);
            acquire(pre); // parents first, outside the clock
            pre.release();
            for (int i = 1; i < n; i++)
                clients.add(newClient());

            long[] acq = new long[n * per];
            AtomicInteger inside = new AtomicInteger(), violations = new AtomicInteger();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CountDownLatch go = new CountDownLatch(1);
            Thread[] t = new Thread[n];
            for (int i = 0; i < n; i++) {
                final int base = i * per;
                final InterProcessMutex m = new InterProcessMutex(clients.get(i), path);
                t[i] = new Thread(() -> {
                    try {
                        go.await();
                        for (int k = 0; k < per; k++) {
                            long a = System.nanoTime();
                            acquire(m);
                            acq[base + k] = System.nanoTime() - a;
                            if (inside.getAndIncrement() != 0)
                                violations.incrementAndGet();
                            inside.decrementAndGet();
                            m.release();
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }, "w2-" + i);
                t[i].start();
            }
            Cost c0 = emit ? Cost.now() : null;
            go.countDown();
            long t0 = System.nanoTime();
            for (Thread th : t)
                th.join();
            double secs = (System.nanoTime() - t0) / 1e9;
            Cost c1 = emit ? Cost.now() : null;
            if (failure.get() != null)
                throw new Exception("w2 worker: " + describe(failure.get()), failure.get());
            if (emit) {
                Cost.record("curator", "W2", c0, c1, n * per);
                result("curator", "W2", "cycles_per_s", n * per / secs);
                result("curator", "W2", "acquire_p50_us", pctUs(acq, 0.5));
                result("curator", "W2", "acquire_p99_us", pctUs(acq, 0.99));
                result("curator", "W2", "exclusion_violations", violations.get());
            }
        } finally {
            closeAll(clients);
        }
    }

    // ---- Q1: queues; 1 producer puts, then 1 or 8 consumers take ----

    static final int Q1_ITEMS = 400;
    /* Q1-flow-8 offers a fixed load under every library's take rate: 200
     * items, one every 20 ms, so that its latency is not a backlog's. */
    static final int Q1_FLOW_ITEMS = 200;
    static final long Q1_FLOW_GAP_NS = 20_000_000L;

    static final QueueSerializer<String> STRINGS = new QueueSerializer<String>() {
        public byte[] serialize(String item) {
            return item.getBytes(StandardCharsets.UTF_8);
        }

        public String deserialize(byte[] bytes) {
            return new String(bytes, StandardCharsets.UTF_8);
        }
    };

    /* DistributedQueue with a lock path (its at-least-once mode: the message
     * is deleted after the consumer returns) and SimpleDistributedQueue
     * (offer / take: at most once). Phases: puts alone, then 1 or 8 consumers
     * take them (Q1-put, Q1-take-1, Q1-take-8); then a producer paced at 50
     * items/s and 8 consumers at once, with each item's put -> take latency
     * (Q1-flow-8). */
    static void q1(String base, int allItems, boolean emit) throws Exception {
        for (String lib : new String[] {"curator-dq", "curator-simple"}) {
            for (int phase = 0; phase < 3; phase++) {
                int consumers = phase == 0 ? 1 : 8;
                boolean flow = phase == 2;
                int items = flow ? Math.min(allItems, Q1_FLOW_ITEMS) : allItems;
                String path = base + "/" + lib + "-" + phase, locks = path + "-locks";
                long[] putNs = new long[items], lat = new long[items];
                AtomicInteger taken = new AtomicInteger();
                CountDownLatch all = new CountDownLatch(1);
                java.util.function.Consumer<String> got = m -> {
                    int k = Integer.parseInt(m);
                    if (flow && k >= 0 && k < items)
                        lat[k] = System.nanoTime() - putNs[k];
                    if (taken.incrementAndGet() >= items)
                        all.countDown();
                };
                CuratorFramework p = newClient();
                DistributedQueue<String> pq = null;
                SimpleDistributedQueue sq = null;
                if (lib.equals("curator-dq")) {
                    pq = QueueBuilder.builder(p, null, STRINGS, path).putInBackground(false).buildQueue();
                    pq.start();
                } else {
                    sq = new SimpleDistributedQueue(p, path);
                }
                long t0 = System.nanoTime();
                if (!flow) {
                    for (int k = 0; k < items; k++)
                        put(pq, sq, k);
                    double putS = (System.nanoTime() - t0) / 1e9;
                    if (emit && phase == 0)
                        result(lib, "Q1-put", "puts_per_s", items / putS);
                    if (pq != null) // the producer leaves before the consumers come
                        pq.close();
                    p.close();
                    pq = null;
                    p = null;
                }
                List<CuratorFramework> cs = new ArrayList<>();
                for (int i = 0; i < consumers; i++)
                    cs.add(newClient());
                List<DistributedQueue<String>> dqs = new ArrayList<>();
                List<Thread> threads = new ArrayList<>();
                t0 = System.nanoTime();
                for (CuratorFramework c : cs) {
                    if (lib.equals("curator-dq")) {
                        QueueConsumer<String> consumer = new QueueConsumer<String>() {
                            public void consumeMessage(String m) {
                                got.accept(m);
                            }

                            public void stateChanged(CuratorFramework cf, ConnectionState st) {}
                        };
                        DistributedQueue<String> q = QueueBuilder.builder(c, consumer, STRINGS, path)
                                .lockPath(locks).buildQueue();
                        dqs.add(q);
                        q.start();
                    } else {
                        SimpleDistributedQueue q = new SimpleDistributedQueue(c, path);
                        Thread t = new Thread(() -> {
                            try {
                                while (taken.get() < items) {
                                    byte[] m = q.poll(200, TimeUnit.MILLISECONDS);
                                    if (m != null)
                                        got.accept(new String(m, StandardCharsets.UTF_8));
                                }
                            } catch (Exception e) {
                                throw new RuntimeException(e);
                            }
                        });
                        threads.add(t);
                        t.start();
                    }
                }
                if (flow) {
                    for (int k = 0; k < items; k++) {
                        long wait = t0 + k * Q1_FLOW_GAP_NS - System.nanoTime();
                        if (wait > 0)
                            Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                        putNs[k] = System.nanoTime();
                        put(pq, sq, k);
                    }
                }
                if (!all.await(600, TimeUnit.SECONDS))
                    throw new IllegalStateException(lib + ": " + taken.get() + " of " + items + " taken");
                double takeS = (System.nanoTime() - t0) / 1e9;
                for (Thread t : threads)
                    t.join();
                for (DistributedQueue<String> q : dqs)
                    q.close();
                if (pq != null)
                    pq.close();
                if (p != null)
                    p.close();
                closeAll(cs);
                if (!emit)
                    continue;
                String work = phase == 0 ? "Q1-take-1" : phase == 1 ? "Q1-take-8" : "Q1-flow-8";
                if (!flow) {
                    result(lib, work, "takes_per_s", items / takeS);
                } else {
                    result(lib, work, "put_to_take_p50_us", pctUs(lat, 0.5));
                    result(lib, work, "put_to_take_p99_us", pctUs(lat, 0.99));
                }
            }
        }
    }

    static void put(DistributedQueue<String> dq, SimpleDistributedQueue sq, int k) throws Exception {
        if (dq != null)
            dq.put(Integer.toString(k));
        else
            sq.offer(Integer.toString(k).getBytes(StandardCharsets.UTF_8));
    }

    // ---- R1, R2, S1: read/write lock and semaphore, one session per thread, 1 ms hold ----

    /* n sessions, the first `writers` of them writers (the rest readers), or with
     * max > 0 all taking one lease of an InterProcessSemaphoreV2 of max. */
    static void shared(String work, String path, int n, int writers, int per, int max, boolean emit)
            throws Exception {
        List<CuratorFramework> clients = new ArrayList<>();
        try {
            CuratorFramework first = newClient();
            clients.add(first);
            if (max > 0) { // parents first, outside the clock
                InterProcessSemaphoreV2 pre = new InterProcessSemaphoreV2(first, path, max);
                pre.returnLease(pre.acquire(ACQUIRE_TIMEOUT_S, TimeUnit.SECONDS));
            } else {
                InterProcessMutex pre = new InterProcessReadWriteLock(first, path).writeLock();
                acquire(pre);
                pre.release();
            }
            for (int i = 1; i < n; i++)
                clients.add(newClient());
            long[] acq = new long[n * per], wacq = new long[Math.max(1, writers * per)];
            AtomicInteger readersIn = new AtomicInteger(), writersIn = new AtomicInteger(),
                    leasesIn = new AtomicInteger(), violations = new AtomicInteger(), nw = new AtomicInteger();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CountDownLatch go = new CountDownLatch(1);
            Thread[] t = new Thread[n];
            for (int i = 0; i < n; i++) {
                final int base = i * per;
                final boolean writer = max == 0 && i < writers;
                final CuratorFramework c = clients.get(i);
                final InterProcessSemaphoreV2 sem = max > 0 ? new InterProcessSemaphoreV2(c, path, max) : null;
                final InterProcessReadWriteLock rw = max > 0 ? null : new InterProcessReadWriteLock(c, path);
                t[i] = new Thread(() -> {
                    try {
                        go.await();
                        for (int k = 0; k < per; k++) {
                            long a = System.nanoTime();
                            Lease lease = null;
                            InterProcessMutex m = null;
                            if (sem != null) {
                                lease = sem.acquire(ACQUIRE_TIMEOUT_S, TimeUnit.SECONDS);
                                if (lease == null)
                                    throw new Exception("no lease within " + ACQUIRE_TIMEOUT_S + " s");
                            } else {
                                m = writer ? rw.writeLock() : rw.readLock();
                                acquire(m);
                            }
                            long waited = System.nanoTime() - a;
                            acq[base + k] = waited;
                            if (writer) {
                                wacq[nw.getAndIncrement()] = waited;
                                if (writersIn.getAndIncrement() != 0 || readersIn.get() != 0)
                                    violations.incrementAndGet();
                            } else if (sem == null) {
                                readersIn.incrementAndGet();
                                if (writersIn.get() != 0)
                                    violations.incrementAndGet();
                            } else if (leasesIn.getAndIncrement() >= max) {
                                violations.incrementAndGet();
                            }
                            Thread.sleep(1);
                            (writer ? writersIn : sem == null ? readersIn : leasesIn).decrementAndGet();
                            if (sem != null)
                                sem.returnLease(lease);
                            else
                                m.release();
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }, work + "-" + i);
                t[i].start();
            }
            Cost c0 = emit ? Cost.now() : null;
            go.countDown();
            long t0 = System.nanoTime();
            for (Thread th : t)
                th.join();
            double secs = (System.nanoTime() - t0) / 1e9;
            Cost c1 = emit ? Cost.now() : null;
            if (failure.get() != null)
                throw new Exception(work + " worker: " + describe(failure.get()), failure.get());
            if (emit) {
                String lib = "curator";
                Cost.record(lib, work, c0, c1, n * per);
                result(lib, work, "cycles_per_s", n * per / secs);
                result(lib, work, "acquire_p50_us", pctUs(acq, 0.5));
                result(lib, work, "acquire_p99_us", pctUs(acq, 0.99));
                if (writers > 0)
                    result(lib, work, "writer_wait_p99_us", pctUs(Arrays.copyOf(wacq, nw.get()), 0.99));
                result(lib, work, "violations", violations.get());
            }
        } finally {
            closeAll(clients);
        }
    }

    // ---- W3: counters ----

    interface Incrementer {
        /** One increment, retried until it lands; returns the number of conflicts it met. */
        long increment() throws Exception;

        default void close() throws Exception {
        }
    }

    interface CounterKind {
        String lib();
        Incrementer open(CuratorFramework c, String path) throws Exception;
        long readFinal(CuratorFramework c, String path) throws Exception;
    }

    static final CounterKind DAL = new CounterKind() {
        public String lib() {
            return "curator-dal";
        }

        public Incrementer open(CuratorFramework c, String path) {
            DistributedAtomicLong d = new DistributedAtomicLong(c, path, new RetryNTimes(Integer.MAX_VALUE, 0));
            return () -> {
                AtomicValue<Long> v = d.increment();
                if (!v.succeeded()) {
                    counterErrors.incrementAndGet();
                    return 0;
                }
                return v.getStats().getOptimisticTries() - 1;
            };
        }

        public long readFinal(CuratorFramework c, String path) throws Exception {
            DistributedAtomicLong d = new DistributedAtomicLong(c, path, new RetryNTimes(3, 100));
            AtomicValue<Long> v = d.get();
            if (!v.succeeded())
                throw new Exception("could not read the final DistributedAtomicLong value of " + path);
            return v.postValue();
        }
    };

    /*
     * SharedCount: a failed trySetCount(previous, n) in Curator 5.4 is either
     * (a) an immediate local "false" because the cached value has already moved
     * past "previous" (no server round trip), or (b) a setData with the old
     * version that met BADVERSION, after which SharedValue re-reads the node
     * synchronously (getData + watch) and installs the newer value in its cache
     * before returning. Either way the next getVersionedValue() sees a newer
     * version, so the plain loop cannot spin on a stale cached value. The guard
     * below only checks that this stays true (and waits, bounded, if not).
     */
    static final AtomicLong staleCacheWaits = new AtomicLong();

    static final CounterKind SHAREDCOUNT = new CounterKind() {
        public String lib() {
            return "curator-sharedcount";
        }

        public Incrementer open(CuratorFramework c, String path) throws Exception {
            SharedCount sc = new SharedCount(c, path, 0);
            sc.start();
            return new Incrementer() {
                public long increment() throws Exception {
                    long conflicts = 0;
                    for (;;) {
                        VersionedValue<Integer> v = sc.getVersionedValue();
                        if (sc.trySetCount(v, v.getValue() + 1))
                            return conflicts;
                        conflicts++;
                        if (sc.getVersionedValue().getVersion() == v.getVersion())
                            waitForNewVersion(sc, v.getVersion());
                    }
                }

                @Override
                public void close() throws Exception {
                    sc.close();
                }
            };
        }

        public long readFinal(CuratorFramework c, String path) throws Exception {
            try (SharedCount sc = new SharedCount(c, path, 0)) {
                sc.start();
                return sc.getCount();
            }
        }
    };

    static void waitForNewVersion(SharedCount sc, int version) throws Exception {
        staleCacheWaits.incrementAndGet();
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (sc.getVersionedValue().getVersion() == version) {
            if (System.nanoTime() - deadline > 0)
                throw new Exception("SharedCount cache stuck at version " + version + " after a failed trySetCount");
            Thread.sleep(1);
        }
    }

    static void w3(String name, String work, int n, int per, int warm) throws Exception {
        for (CounterKind k : new CounterKind[] {DAL, SHAREDCOUNT}) {
            String suffix = k == DAL ? "-dal" : "-sc";
            progress(name + " " + k.lib() + " warm-up");
            counterRun(k, work, root + "/warm-" + name + suffix, n, warm, false);
            progress(name + " " + k.lib());
            counterRun(k, work, root + "/" + name + suffix, n, per, true);
        }
    }

    static void counterRun(CounterKind kind, String work, String path, int n, int per, boolean emit)
            throws Exception {
        List<CuratorFramework> clients = new ArrayList<>();
        List<Incrementer> incs = new ArrayList<>();
        long staleBefore = staleCacheWaits.get();
        try {
            for (int i = 0; i < n; i++)
                clients.add(newClient());
            // A fresh counter: drop whatever an earlier run with the same ROOT left.
            if (clients.get(0).checkExists().forPath(path) != null)
                clients.get(0).delete().deletingChildrenIfNeeded().forPath(path);
            for (int i = 0; i < n; i++)
                incs.add(kind.open(clients.get(i), path));

            long[] lat = new long[n * per];
            AtomicLong conflicts = new AtomicLong();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CountDownLatch go = new CountDownLatch(1);
            Thread[] t = new Thread[n];
            for (int i = 0; i < n; i++) {
                final int base = i * per;
                final Incrementer inc = incs.get(i);
                t[i] = new Thread(() -> {
                    try {
                        go.await();
                        long mine = 0;
                        for (int k = 0; k < per; k++) {
                            long a = System.nanoTime();
                            mine += inc.increment();
                            lat[base + k] = System.nanoTime() - a;
                        }
                        conflicts.addAndGet(mine);
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }, work + "-" + i);
                t[i].start();
            }
            Cost c0 = emit ? Cost.now() : null;
            go.countDown();
            long t0 = System.nanoTime();
            for (Thread th : t)
                th.join();
            double secs = (System.nanoTime() - t0) / 1e9;
            Cost c1 = emit ? Cost.now() : null;
            if (failure.get() != null)
                throw new Exception(kind.lib() + " worker: " + describe(failure.get()), failure.get());

            long fin;
            CuratorFramework fresh = newClient();
            try {
                fin = kind.readFinal(fresh, path);
            } finally {
                fresh.close();
            }
            long total = (long) n * per;
            if (fin != total) {
                System.err.printf(Locale.ROOT, "CuratorBench: %s %s: final %d, expected %d%n", work, kind.lib(), fin, total);
                counterErrors.incrementAndGet();
            }
            long stale = staleCacheWaits.get() - staleBefore;
            if (stale != 0)
                System.err.printf(Locale.ROOT, "CuratorBench: %s %s: %d stale-cache waits after failed trySetCount%n",
                        work, kind.lib(), stale);
            if (emit) {
                String lib = kind.lib();
                Cost.record(lib, work, c0, c1, total);
                result(lib, work, "increments_per_s", total / secs);
                result(lib, work, "p50_us", pctUs(lat, 0.5));
                result(lib, work, "p99_us", pctUs(lat, 0.99));
                result(lib, work, "conflicts", conflicts.get());
                result(lib, work, "final_minus_expected", fin - total);
            }
        } finally {
            for (Incrementer inc : incs) {
                try {
                    inc.close();
                } catch (Exception ignore) {
                    // closing the client below is what matters
                }
            }
            closeAll(clients);
        }
    }

    // ---- W4: election failover ----

    static final class Candidate {
        final CuratorFramework client;
        final LeaderLatch latch;
        final AtomicLong ledNs = new AtomicLong();
        final AtomicInteger led = new AtomicInteger();
        boolean closed;

        Candidate(String path, int number) throws Exception {
            client = newClient();
            latch = new LeaderLatch(client, path, "cand-" + number);
            latch.addListener(new LeaderLatchListener() {
                public void isLeader() {
                    ledNs.set(System.nanoTime());
                    led.set(1);
                }

                public void notLeader() {
                }
            });
            latch.start();
        }
    }

    static void w4(String path, int repeats, boolean emit) throws Exception {
        Candidate[] c = new Candidate[W4_CANDIDATES];
        List<Candidate> all = new ArrayList<>();
        int joined = 0;
        long[] d = new long[repeats];
        try {
            for (int i = 0; i < W4_CANDIDATES; i++) {
                c[i] = new Candidate(path, joined++);
                all.add(c[i]);
            }
            for (int r = 0; r < repeats; r++) {
                long deadline = System.nanoTime() + W4_DEADLINE_NS;
                int leader = -1;
                for (;;) { // everyone queued, exactly one leader
                    int count = 0;
                    for (int i = 0; i < W4_CANDIDATES; i++) {
                        if (c[i].latch.hasLeadership()) {
                            count++;
                            leader = i;
                        }
                    }
                    if (count == 1)
                        break;
                    if (System.nanoTime() - deadline > 0)
                        throw new Exception("w4: " + count + " leaders after 30 s (expected exactly one)");
                    Thread.sleep(1);
                }
                Thread.sleep(50); // let the queue settle: every watch set
                long t0 = System.nanoTime();
                c[leader].closed = true;
                /*
                 * The leader's session ends. Caveat (ZooKeeper 3.8.0 Java client): the
                 * closing SendThread holds the monitor of its ClientCnxn.state value, a
                 * ZooKeeper.States enum constant shared by every client in the JVM, for
                 * the 100 ms Thread.sleep in ClientCnxnSocketNIO.cleanup(); another
                 * in-process client that queues a request then (the next candidate's
                 * getChildren) blocks for those 100 ms. So now and then a failover here
                 * measures ~100 ms for a reason that would not exist across processes.
                 */
                c[leader].client.close();
                int next = -1;
                while (next < 0) {
                    for (int i = 0; i < W4_CANDIDATES; i++)
                        if (i != leader && c[i].led.get() != 0 && c[i].ledNs.get() - t0 > 0)
                            next = i;
                    if (next >= 0)
                        break;
                    if (System.nanoTime() - deadline > 0)
                        throw new Exception("w4: no new leader within 30 s of closing the leader's session");
                    LockSupport.parkNanos(100_000);
                }
                d[r] = c[next].ledNs.get() - t0;
                c[leader] = new Candidate(path, joined++); // a new candidate at the back
                all.add(c[leader]);
            }
            StringBuilder sb = new StringBuilder();
            for (long x : d)
                sb.append(String.format(Locale.ROOT, " %.0f", x / 1e3));
            progress("w4: " + repeats + " failovers (us):" + sb);
            if (emit) {
                result("curator", "W4", "failover_p50_us", pctUs(d, 0.5));
                result("curator", "W4", "failover_min_us", pctUs(d, 0));
                result("curator", "W4", "failover_max_us", pctUs(d, 1));
            }
        } finally {
            for (Candidate x : all) {
                if (x.closed)
                    continue;
                try {
                    x.latch.close();
                } catch (Exception ignore) {
                    // the session close below removes the node anyway
                }
                x.client.close();
            }
        }
    }

    // ---- helpers ----

    /* C1: change to callback, as zkr_bench's C1 measures it for zkrecipes' node
     * cache: one client sets the node (sync), another follows it with a
     * CuratorCache; the time from the set to the changed callback. */
    static void c1(String path, int changes, boolean emit) throws Exception {
        CuratorFramework w = newClient(), r = newClient();
        try {
            w.create().creatingParentContainersIfNeeded().forPath(path, new byte[8]);
            java.util.concurrent.Semaphore changed = new java.util.concurrent.Semaphore(0);
            AtomicLong at = new AtomicLong();
            CountDownLatch init = new CountDownLatch(1);
            CuratorCache cache = CuratorCache.build(r, path);
            cache.listenable().addListener(CuratorCacheListener.builder()
                    .forChanges((before, after) -> {
                        at.set(System.nanoTime());
                        changed.release();
                    })
                    .forInitialized(init::countDown).build());
            cache.start();
            if (!init.await(60, TimeUnit.SECONDS))
                throw new Exception("CuratorCache never initialized");
            long[] d = new long[changes];
            byte[] value = "12345678".getBytes(StandardCharsets.US_ASCII);
            for (int i = 0; i < changes; i++) {
                long t0 = System.nanoTime();
                w.setData().forPath(path, value);
                if (!changed.tryAcquire(30, TimeUnit.SECONDS))
                    throw new Exception("CuratorCache missed a change");
                d[i] = at.get() - t0;
            }
            cache.close();
            if (emit) {
                result("curator-cache", "C1-node-cache", "p50_us", pctUs(d, 0.5));
                result("curator-cache", "C1-node-cache", "p99_us", pctUs(d, 0.99));
            }
        } finally {
            r.close();
            w.close();
        }
    }

    /* C2: the initial load of a cache of n children with data (what zkr_bench's
     * C2 measures for zkrecipes' children cache): CuratorCache (a persistent
     * recursive watch, then a read of every node) and PathChildrenCache with data,
     * each from start() to its "initialized" callback, on a fresh session. */
    static void c2(String path, int n, boolean emit) throws Exception {
        CuratorFramework w = newClient();
        try {
            w.create().creatingParentContainersIfNeeded().forPath(path);
            for (int b = 0; b < n; b += 100) {
                List<CuratorOp> ops = new ArrayList<>();
                for (int i = b; i < Math.min(n, b + 100); i++)
                    ops.add(w.transactionOp().create().forPath(String.format("%s/member-%06d", path, i),
                            "host-1.example:8080".getBytes(StandardCharsets.UTF_8)));
                w.transaction().forOperations(ops);
            }
        } finally {
            w.close();
        }
        String work = "C2-children-" + n;
        {
            CuratorFramework r = newClient();
            CountDownLatch init = new CountDownLatch(1);
            long t0 = System.nanoTime();
            CuratorCache cache = CuratorCache.build(r, path);
            cache.listenable().addListener(CuratorCacheListener.builder().forInitialized(init::countDown).build());
            cache.start();
            if (!init.await(300, TimeUnit.SECONDS))
                throw new Exception("CuratorCache of " + n + " children never initialized");
            double ms = (System.nanoTime() - t0) / 1e6;
            if (emit)
                result("curator-cache", work, "load_ms", ms);
            cache.close();
            r.close();
        }
        {
            CuratorFramework r = newClient();
            CountDownLatch init = new CountDownLatch(1);
            long t0 = System.nanoTime();
            PathChildrenCache pcc = new PathChildrenCache(r, path, true);
            pcc.getListenable().addListener((cl, ev) -> {
                if (ev.getType() == PathChildrenCacheEvent.Type.INITIALIZED)
                    init.countDown();
            });
            pcc.start(PathChildrenCache.StartMode.POST_INITIALIZED_EVENT);
            if (!init.await(300, TimeUnit.SECONDS))
                throw new Exception("PathChildrenCache of " + n + " children never initialized");
            double ms = (System.nanoTime() - t0) / 1e6;
            if (emit)
                result("curator-pcc", work, "load_ms", ms);
            pcc.close();
            r.close();
        }
    }

    /* D1: service discovery. A registration (ServiceDiscovery.registerService) on
     * one client, seen by a ServiceCache listener on another; lookups per second
     * from a ServiceProvider (round robin, 3 instances); re-registration after the
     * writer's session is expired on the server (a second handle with its id and
     * password, closed), until the reader's cache holds the instance again. */
    static void d1(String base, int changes, int lookups, int expiries, boolean emit) throws Exception {
        CuratorFramework w = newClient(), r = newClient();
        try {
            ServiceDiscovery<Void> wd = ServiceDiscoveryBuilder.builder(Void.class).client(w).basePath(base).build();
            ServiceDiscovery<Void> rd = ServiceDiscoveryBuilder.builder(Void.class).client(r).basePath(base).build();
            wd.start();
            rd.start();
            ServiceCache<Void> cache = rd.serviceCacheBuilder().name("svc").build();
            AtomicReference<String> want = new AtomicReference<>("");
            java.util.concurrent.Semaphore seen = new java.util.concurrent.Semaphore(0);
            AtomicLong at = new AtomicLong();
            cache.addListener(new ServiceCacheListener() {
                public void cacheChanged() {
                    for (ServiceInstance<Void> i : cache.getInstances())
                        if (i.getId().equals(want.get())) {
                            at.set(System.nanoTime());
                            want.set(""); /* once */
                            seen.release();
                            return;
                        }
                }
                public void stateChanged(CuratorFramework c, ConnectionState s) {}
            });
            cache.start();
            long[] d = new long[changes];
            for (int i = 0; i < changes; i++) {
                ServiceInstance<Void> in = ServiceInstance.<Void>builder().name("svc").id("c" + i)
                        .address("10.0.0.7").port(8080).build();
                want.set("c" + i);
                long t0 = System.nanoTime();
                wd.registerService(in);
                if (!seen.tryAcquire(30, TimeUnit.SECONDS))
                    throw new Exception("ServiceCache never saw instance c" + i);
                d[i] = at.get() - t0;
                wd.unregisterService(in);
            }
            if (emit) {
                result("curator", "D1-register-seen", "p50_us", pctUs(d, 0.5));
                result("curator", "D1-register-seen", "p99_us", pctUs(d, 0.99));
            }
            if (lookups > 0) {
                for (int i = 0; i < 3; i++)
                    wd.registerService(ServiceInstance.<Void>builder().name("svc").id("p" + i)
                            .address("10.0.0.7").port(8080 + i).build());
                ServiceProvider<Void> p = rd.serviceProviderBuilder().serviceName("svc")
                        .providerStrategy(new RoundRobinStrategy<>()).build();
                p.start();
                long until = System.nanoTime() + 10_000_000_000L;
                while (p.getAllInstances().size() < 3 && System.nanoTime() < until)
                    Thread.sleep(1);
                long t0 = System.nanoTime();
                for (int i = 0; i < lookups; i++)
                    if (p.getInstance() == null)
                        throw new Exception("ServiceProvider gave no instance");
                if (emit)
                    result("curator", "D1-lookup", "lookups_per_s", lookups / ((System.nanoTime() - t0) / 1e9));
                p.close();
            }
            if (expiries > 0) {
                ServiceInstance<Void> in = ServiceInstance.<Void>builder().name("svc").id("again")
                        .address("10.0.0.7").port(8080).build();
                want.set("again");
                wd.registerService(in);
                if (!seen.tryAcquire(30, TimeUnit.SECONDS))
                    throw new Exception("ServiceCache never saw instance again");
                long[] e = new long[expiries];
                for (int i = 0; i < expiries; i++) {
                    /* Gone first (the cache no longer holds it), then back. */
                    long closed = expire(w);
                    long until = System.nanoTime() + 30_000_000_000L;
                    while (cache.getInstances().stream().anyMatch(x -> x.getId().equals("again"))
                            && System.nanoTime() < until)
                        Thread.sleep(0, 200_000);
                    want.set("again");
                    if (cache.getInstances().stream().anyMatch(x -> x.getId().equals("again"))) {
                        /* back already: re-registered before the cache saw it gone */
                        at.set(System.nanoTime());
                        want.set("");
                    } else if (!seen.tryAcquire(30, TimeUnit.SECONDS)) {
                        throw new Exception("the instance was not registered again after an expiry");
                    }
                    seen.drainPermits();
                    e[i] = at.get() - closed;
                }
                if (emit)
                    result("curator", "D1-reregister-after-expiry", "p50_ms", pctUs(e, 0.5) / 1e3);
            }
            cache.close();
            rd.close();
            wd.close();
        } finally {
            r.close();
            w.close();
        }
    }

    /* Expire c's session on the server; returns when (nanoTime) the closing that
     * ended it was made. */
    static long expire(CuratorFramework c) throws Exception {
        org.apache.zookeeper.ZooKeeper zk = c.getZookeeperClient().getZooKeeper();
        long id = zk.getSessionId();
        byte[] pw = zk.getSessionPasswd();
        long closed = System.nanoTime();
        for (int attempt = 0; attempt < 20; attempt++) {
            CountDownLatch up = new CountDownLatch(1);
            AtomicReference<org.apache.zookeeper.Watcher.Event.KeeperState> st = new AtomicReference<>();
            org.apache.zookeeper.ZooKeeper clone = new org.apache.zookeeper.ZooKeeper(hosts, SESSION_TIMEOUT_MS,
                    ev -> {
                        st.set(ev.getState());
                        up.countDown();
                    }, id, pw);
            up.await(15, TimeUnit.SECONDS);
            if (st.get() == org.apache.zookeeper.Watcher.Event.KeeperState.SyncConnected)
                closed = System.nanoTime();
            clone.close();
            if (st.get() == org.apache.zookeeper.Watcher.Event.KeeperState.Expired)
                return closed;
        }
        throw new Exception("could not expire session 0x" + Long.toHexString(id));
    }

    static CuratorFramework newClient() throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.newClient(hosts, SESSION_TIMEOUT_MS, CONNECTION_TIMEOUT_MS,
                new RetryNTimes(3, 100));
        c.start();
        if (!c.blockUntilConnected(CONNECT_WAIT_S, TimeUnit.SECONDS)) {
            c.close();
            throw new Exception("could not connect to " + hosts + " within " + CONNECT_WAIT_S + " s");
        }
        return c;
    }

    static void acquire(InterProcessMutex m) throws Exception {
        if (!m.acquire(ACQUIRE_TIMEOUT_S, TimeUnit.SECONDS))
            throw new Exception("lock not acquired within " + ACQUIRE_TIMEOUT_S + " s");
    }

    static void closeAll(List<CuratorFramework> clients) {
        for (CuratorFramework c : clients)
            c.close();
    }

    /* Percentile of nanosecond samples, in microseconds: the value at index round((n-1)*p). */
    static double pctUs(long[] ns, double p) {
        if (ns.length == 0)
            return 0;
        long[] s = ns.clone();
        Arrays.sort(s);
        return s[(int) Math.round((s.length - 1) * p)] / 1e3;
    }

    static void result(String lib, String work, String key, double v) {
        System.out.println(String.format(Locale.ROOT, "RESULT lib=%s work=%s %s=%.3f", lib, work, key, v));
        System.out.flush();
    }

    static void progress(String msg) {
        System.err.println("curator-bench: " + msg);
    }

    static String describe(Throwable t) {
        Throwable root = t;
        while (root.getCause() != null && root.getCause() != root)
            root = root.getCause();
        String m = root.getMessage();
        String s = root.getClass().getName() + (m != null ? ": " + m : "");
        if (root != t && t.getMessage() != null && !t.getMessage().contains(s))
            s = t.getMessage() + " (" + s + ")";
        return s.replace('\n', ' ');
    }

    /*
     * slf4j-api without a binding falls back to its no-op logger but prints a
     * three-line warning once, on first use (and MDC another one, which
 * ZooKeeper's client touches). Initialise both here with stderr
     * muted; the classpath (and so the no-op behaviour) is left unchanged.
     */
    static void quietSlf4j() {
        PrintStream saved = System.err;
        try {
            System.setErr(new PrintStream(OutputStream.nullOutputStream()));
            Class.forName("org.slf4j.LoggerFactory").getMethod("getILoggerFactory").invoke(null);
            Class.forName("org.slf4j.MDC"); // its static initialiser warns about the missing MDC binder
        } catch (Throwable ignore) {
            // no slf4j at all: nothing to silence
        } finally {
            System.setErr(saved);
        }
    }
}
