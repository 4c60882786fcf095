// A QMP client for the checkpoint sink that drives QEMU's COLO from outside
// (reference colo-proxy.md §10 (b)): setting x-checkpoint-delay while in COLO
// starts a checkpoint at once; the primary's STOP → RESUME pair brackets the
// checkpoint, and the proxy flushes on RESUME. QMP's wire shape is the one our
// control socket speaks, so the control client does the framing.

import { ControlClient, type ControlEvent } from './control-client.ts';

export class QmpClient {
  readonly client: ControlClient;
  onEvent: (e: ControlEvent) => void = () => {};

  private constructor(client: ControlClient) {
    this.client = client;
    client.onEvent = (e) => this.onEvent(e);
  }

  static async connect(spec: string): Promise<QmpClient> {
    // The control client negotiates capabilities on connect.
    return new QmpClient(await ControlClient.connect(spec));
  }

  /** Re-sets x-checkpoint-delay to its current value: in COLO this requests a checkpoint now. */
  async kickCheckpoint(): Promise<void> {
    const params = (await this.client.execute('query-migrate-parameters')) as { 'x-checkpoint-delay'?: number };
    const delay = params['x-checkpoint-delay'] ?? 20000;
    await this.client.execute('migrate-set-parameters', { 'x-checkpoint-delay': delay });
  }

  close(): void {
    this.client.close();
  }
}
