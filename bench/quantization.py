r"""Accuracy against uplink bits for b-bit quantized FedAvg on real MNIST (2NN).

  .venv/bin/python -m bench.quantization > /tmp/quantization.txt 2>&1
  .venv/bin/python -m bench.quantization --rounds=3 --partitions=iid --bits=8,32   # smoke test

McMahan's MNIST setting (100 clients, 10 per round, E=1, B=10, client lr 0.1, server SGD lr 1),
`--rounds` rounds (default 100), IID and the pathological `shards` split, for each of --bits
with and without randomized Hadamard rotation (32 = float32, no quantization), stochastic
rounding. Each cell is one `python -m launch.run_experiment` subprocess with its run directory
in bench/out/; runs resume, and a finished one is only read back. The table gives final and
best test accuracy, total uplink megabits (exact, from comm/uplink_bits_round), the accuracy
change and the bits ratio against float32, and the median round time against float32 (the
quantization layer's overhead, including the extra unquantized mean it computes for
comm/quantization_mse).
"""

import os
import statistics
import sys
from typing import Optional, Sequence

from absl import app
from absl import flags
import pandas as pd

from bench import common

_ROUNDS = flags.DEFINE_integer('rounds', 100, 'Rounds per run.', lower_bound=1)
_BITS = flags.DEFINE_list('bits', ['1', '2', '4', '8', '32'], 'Uplink bits (32 = float32).')
_PARTITIONS = flags.DEFINE_list('partitions', ['iid', 'shards'], 'Client splits.')
_TIME_BUDGET_S = flags.DEFINE_float('time_budget_s', 0, 'Seconds per run (0: no limit).')


def cells(bits_list: Sequence[int]) -> list[tuple[int, str]]:
  """(bits, rotation) pairs: every b < 32 with and without rotation, and float32 once."""
  out = []
  for bits in bits_list:
    out += [(bits, 'none')] if bits >= 32 else [(bits, 'none'), (bits, 'hadamard')]
  return out


def run_name(partition: str, bits: int, rotation: str) -> str:
  return f'quant_{partition}_b{bits}_{rotation}_r{_ROUNDS.value}'


def command(partition: str, bits: int, rotation: str) -> list[str]:
  settings = {
      **common.MCMAHAN_MNIST, 'partition': partition, 'model': 'mnist_2nn',
      'total_rounds': _ROUNDS.value, 'rounds_per_eval': 10, 'rounds_per_checkpoint': 20,
      'root_output_dir': common.OUT_DIR, 'experiment_name': run_name(partition, bits, rotation),
  }
  if bits < 32:
    settings.update(quantization='uniform', quantization_bits=bits,
                    quantization_rotation=rotation)
  return [sys.executable, '-m', 'launch.run_experiment', *common.as_flags(settings)]


def read(partition: str, bits: int, rotation: str) -> Optional[pd.DataFrame]:
  path = os.path.join(common.OUT_DIR, run_name(partition, bits, rotation), 'metrics.csv')
  return pd.read_csv(path) if os.path.exists(path) else None


def table(partition: str, bits_list: Sequence[int]) -> list[list[str]]:
  """One row per cell of `partition`, compared with its float32 run."""
  float_run = read(partition, 32, 'none')
  rows = []
  for bits, rotation in cells(bits_list):
    frame = read(partition, bits, rotation)
    if frame is None or frame.empty:
      rows.append([partition, bits, rotation] + ['-'] * 7)
      continue
    final = frame['eval/accuracy'].dropna().iloc[-1]
    best = frame['eval/accuracy'].max()
    uplink = frame['comm/uplink_bits_round'].sum()
    round_s = statistics.median(frame['round_time_s'].iloc[1:] if len(frame) > 1
                                else frame['round_time_s'])
    if float_run is not None and not float_run.empty:
      float_final = float_run['eval/accuracy'].dropna().iloc[-1]
      float_s = statistics.median(float_run['round_time_s'].iloc[1:])
      delta = f'{100 * (final - float_final):+.2f}'
      ratio = f'{float_run["comm/uplink_bits_round"].sum() / uplink:.2f}x'
      overhead = f'{round_s / float_s:.2f}x'
    else:
      delta = ratio = overhead = '-'
    rows.append([partition, bits, rotation, f'{final:.4f}', f'{best:.4f}', delta,
                 f'{uplink / 1e6:,.1f}', ratio, f'{round_s:.3f}', overhead])
  return rows


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  bits_list = sorted({int(b) for b in _BITS.value}, reverse=True)
  print(common.machine_line(), flush=True)
  common.run_cells(
      [(run_name(partition, bits, rotation), command(partition, bits, rotation))
       for partition in _PARTITIONS.value
       for bits, rotation in [(32, 'none')] + [c for c in cells(bits_list) if c[0] < 32]],
      budget_s=_TIME_BUDGET_S.value)
  rows = [row for p in _PARTITIONS.value for row in table(p, bits_list)]
  print(f'\nMNIST 2NN, 100 clients, 10 per round, E=1, B=10, {_ROUNDS.value} rounds, '
        'stochastic rounding; deltas and ratios against float32 on the same split')
  print(common.format_table(
      ['split', 'bits', 'rotation', 'final acc', 'best acc', 'vs float (points)',
       'uplink Mbit', 'fewer bits', 'median round s', 'round time vs float'], rows))


if __name__ == '__main__':
  app.run(main)
