"""A sweep's grid: axes from `--grid flag=v1,v2` or a JSON/YAML file, points, run names.

An axis is one flag and its values; the grid is the product of the axes (first axis slowest),
with the seeds as the last axis. Values stay as given (strings from the command line, JSON or
YAML scalars from a file) until `sweeps.plan` validates each point with the launch script's own
flag parsers; run names are then made from the parsed values (`run_name`), so `0.10` and `0.1`
name the same run. Nothing here imports TensorFlow.
"""

import dataclasses
import hashlib
import itertools
import json
from typing import Any, Mapping, Optional, Sequence

import yaml

from tff_experiments.core import applicability
from tff_experiments.core import config

# Run names longer than this keep a prefix and a hash of the whole name (filesystems: 255 bytes).
MAX_NAME_LENGTH = 200
SEED_FLAG = 'seed'


class GridError(ValueError):
  """A malformed grid (the message names the flag or file and what is wrong)."""


@dataclasses.dataclass(frozen=True)
class Axis:
  """One flag of the grid and the values it takes, in order."""
  flag: str
  values: tuple[Any, ...]


def parse_axis(spec: str) -> Axis:
  """`'client_learning_rate=0.01,0.03'` -> Axis('client_learning_rate', ('0.01', '0.03'))."""
  flag, sep, text = spec.partition('=')
  flag = flag.strip().lstrip('-')
  values = tuple(v.strip() for v in text.split(','))
  if not sep or not flag or not all(values):
    raise GridError(f'--grid {spec!r}: expected flag=value1,value2,... (no empty values)')
  return Axis(flag, values)


def read_grid_file(path: str) -> list[Axis]:
  """Axes of a JSON or YAML file mapping flag -> list of values (a scalar is one value).

  A list value of a list-valued flag (`mlp_hidden_units: [[32], [64, 64]]`) is one value.
  """
  try:
    with open(path, encoding='utf-8') as f:
      text = f.read()
    grid = json.loads(text) if path.endswith('.json') else yaml.safe_load(text)
  except (OSError, ValueError, yaml.YAMLError) as e:
    raise GridError(f'--grid_file={path}: {e}') from e
  if not isinstance(grid, Mapping) or not grid:
    raise GridError(f'--grid_file={path}: expected a mapping of flag name -> list of values')
  axes = []
  for flag, values in grid.items():
    values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
    if not values or any(v is None or v == '' for v in values):
      raise GridError(f'--grid_file={path}: {flag}: expected a non-empty list of values')
    axes.append(Axis(str(flag), values))
  return axes


def combine(axes: Sequence[Axis], seeds: Optional[Sequence[int]] = None) -> list[Axis]:
  """The grid's axes, seeds last; GridError if a flag appears twice."""
  axes = list(axes)
  if seeds is not None:
    if not seeds:
      raise GridError('--seeds: give at least one seed')
    axes.append(Axis(SEED_FLAG, tuple(seeds)))
  seen = set()
  for axis in axes:
    if axis.flag in seen:
      where = ' (and --seeds)' if axis.flag == SEED_FLAG and seeds is not None else ''
      raise GridError(f'--{axis.flag} is given twice in the grid{where}')
    seen.add(axis.flag)
  return axes


def expand(axes: Sequence[Axis]) -> list[dict[str, Any]]:
  """Every point of the grid (flag -> value), the first axis varying slowest."""
  return [dict(zip((a.flag for a in axes), values))
          for values in itertools.product(*(a.values for a in axes))]


flag_text = applicability.flag_text  # A value as launch.run_experiment's command line takes it.


def flag_args(point: Mapping[str, Any]) -> list[str]:
  """`{'a': 1}` -> `['--a=1']`."""
  return [f'--{flag}={flag_text(value)}' for flag, value in point.items()]


def run_name(values: Mapping[str, Any]) -> str:
  """Readable and stable: `flag=value` of each grid axis in grid order, joined by '-'.

  E.g. `client_learning_rate=0.01-server_optimizer=adam-seed=1`. A name longer than
  MAX_NAME_LENGTH keeps its start and ends with a hash of the whole name.
  """
  name = '-'.join(f'{flag}={config.name_text(value)}' for flag, value in values.items())
  if len(name) > MAX_NAME_LENGTH:
    digest = hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]
    name = f'{name[:MAX_NAME_LENGTH - 9]}-{digest}'
  return name


def check_unique(names: Sequence[str]) -> None:
  """GridError if two points get the same run name (a value given twice in an axis)."""
  seen = set()
  for name in names:
    if name in seen:
      raise GridError(f'two points of the grid are the same run {name!r}: a value is given '
                      'twice (e.g. 0.1 and 0.10)')
    seen.add(name)


def default_sweep_name(axes: Sequence[Axis], fixed_args: Sequence[str]) -> str:
  """`sweep-<axis flags>-<hash of the grid and fixed flags>`: the same command, the same sweep."""
  text = json.dumps([[a.flag, [flag_text(v) for v in a.values]] for a in axes]
                    + [list(fixed_args)])
  digest = hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]
  head = '-'.join(['sweep'] + [a.flag for a in axes])
  return f'{head[:MAX_NAME_LENGTH - 9]}-{digest}'
