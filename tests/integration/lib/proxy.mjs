// proxy.mjs -- a TCP proxy between vexil and PostgreSQL that the tests can
// make misbehave the way a network or a failing-over database does: it
// forwards, or it goes silent (accepts and holds bytes without passing them
// on, so the peer's reads hang: a black hole), for new connections only or
// for every open one too.  Loopback only.
import net from 'node:net';

export class TcpProxy {
  /** targetPort: where PostgreSQL listens on 127.0.0.1. */
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.mode = 'forward'; // for new connections: 'forward' | 'blackhole'
    this.pairs = new Set(); // {client, upstream, hung}
    this.accepted = 0;
    this.server = null;
    this.port = 0;
    /** Decide the mode of the n-th connection (1-based); default: this.mode. */
    this.policy = null;
  }

  start() {
    return new Promise((resolve, reject) => {
      this.server = net.createServer((client) => this._accept(client));
      this.server.on('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.port = this.server.address().port;
        resolve(this);
      });
    });
  }

  /** A libpq URI through the proxy for database `name`. */
  url(name) {
    return `postgresql://postgres@127.0.0.1:${this.port}/${name}`;
  }

  _accept(client) {
    this.accepted++;
    const mode = this.policy ? this.policy(this.accepted) : this.mode;
    const pair = { n: this.accepted, client, upstream: null, hung: mode === 'blackhole' };
    this.pairs.add(pair);
    client.on('error', () => {});
    client.on('close', () => {
      pair.upstream?.destroy();
      this.pairs.delete(pair);
    });
    if (pair.hung) {
      client.pause(); // read nothing, answer nothing
      return;
    }
    const up = net.connect(this.targetPort, '127.0.0.1');
    pair.upstream = up;
    up.on('error', () => {});
    up.on('close', () => client.destroy());
    client.on('data', (d) => {
      // Remember the connection that asked to LISTEN (vexil's listener).
      if (!pair.listens && d.includes('LISTEN')) pair.listens = true;
      if (!pair.hung) up.write(d);
    });
    up.on('data', (d) => { if (!pair.hung) client.write(d); });
  }

  /**
   * Stop forwarding on the open connections that `which` picks (all by
   * default; it gets {n}, the 1-based order of acceptance), and black-hole
   * new ones.
   */
  hang(which = () => true) {
    this.mode = 'blackhole';
    this.policy = null;
    for (const p of this.pairs) if (which(p)) p.hung = true;
  }

  /** Forward new connections again; hung ones stay hung (as after a failover). */
  heal() {
    this.mode = 'forward';
  }

  /** Close every connection (as a restarted database does). */
  dropAll() {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream?.destroy();
    }
    this.pairs.clear();
  }

  async close() {
    this.dropAll();
    await new Promise((r) => this.server.close(r));
  }
}
