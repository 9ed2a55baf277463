"""How soon a preemption notice to one process stops every process, and what the per-step
check costs (`multihost_utils.reached_preemption_sync_point`, what the training loop
asks after every step on several processes).

  python -m bench.preemption [--step_ms=20] [--steps_before=50]

Two local processes join one `jax.distributed` job (2 CPU devices each) and run a loop
of a small jitted all-reduce plus `--step_ms` of host work per step, asking the sync
point after every step. Once both have run `--steps_before` steps, process 1 alone gets
SIGTERM; each process prints the step at which the sync point came and the seconds since
the signal. Before the signal, each also times 10,000 calls of the check (no notice).
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

_WORKER = r'''
import os, sys, time
os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=2'
import jax, numpy as np
from jax.experimental import multihost_utils
process, address, step_ms, signal_file = sys.argv[1:5]
jax.distributed.initialize(address, 2, int(process))
mesh = jax.sharding.Mesh(np.array(jax.devices()), ('d',))
x = multihost_utils.host_local_array_to_global_array(
    np.ones((2, 4), np.float32), mesh, jax.sharding.PartitionSpec('d'))
total = jax.jit(lambda a: a.sum())
calls = 10_000
start = time.perf_counter()
for _ in range(calls):
  multihost_utils.reached_preemption_sync_point(0)
print(f'process {process}: check {1e6 * (time.perf_counter() - start) / calls:.2f} us/call',
      flush=True)
step = 0
while True:
  step += 1
  total(x).block_until_ready()
  time.sleep(float(step_ms) / 1000)
  print(f'step {step}', flush=True)
  if multihost_utils.reached_preemption_sync_point(step):
    sent = os.path.getmtime(signal_file) if os.path.exists(signal_file) else float('nan')
    print(f'process {process}: sync point at step {step}, {time.time() - sent:.2f} s after '
          'the signal', flush=True)
    break
'''


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--step_ms', type=float, default=20.0)
  parser.add_argument('--steps_before', type=int, default=50)
  args = parser.parse_args()
  address = f'127.0.0.1:{_free_port()}'
  signal_file = f'/tmp/preemption_bench_{os.getpid()}.signal'
  workers = [subprocess.Popen(
      [sys.executable, '-c', _WORKER, str(i), address, str(args.step_ms), signal_file],
      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for i in range(2)]
  try:
    signal_step = None
    for line in workers[1].stdout:
      if line.startswith('process'):
        print(line.strip())
      if line.startswith(f'step {args.steps_before}\n'):
        with open(signal_file, 'w'):
          pass  # its modification time is the moment of the signal
        workers[1].send_signal(signal.SIGTERM)
        signal_step = args.steps_before
        break
    outputs = [workers[0].communicate(timeout=120)[0],
               workers[1].communicate(timeout=120)[0]]
  finally:
    for worker in workers:
      if worker.poll() is None:
        worker.kill()
    if os.path.exists(signal_file):
      os.remove(signal_file)
  for output in outputs:
    for line in output.splitlines():
      if line.startswith('process'):
        print(line)
  print(f'SIGTERM sent to process 1 after its step {signal_step} '
        f'({args.step_ms:g} ms of host work per step)')


if __name__ == '__main__':
  time_start = time.time()
  main()
  print(f'total {time.time() - time_start:.1f} s')
