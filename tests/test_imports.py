"""Imports flow one way: the subpackages of tff_experiments form layers, each importing only
from the layers below it, so there is no cycle between them; nothing imports `launch`.

Every import counts, a lazy one inside a function too (it is a dependency all the same). A
unit is a subpackage (`runner`) or a top-level module (`experiment`).
"""

import ast
import collections
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1] / 'tff_experiments'

# Lowest first. A unit may import its own modules and those of lower layers; units of one
# layer are independent of each other.
LAYERS = (
    ('core',),  # Settings mechanism, registries, seeds, seeded noise, files.
    ('models',),
    ('clients',),  # Client data, the client update.
    ('results',),  # A run's files: run directory, metrics.csv, summary.
    ('runner', 'evaluation', 'runtime'),  # Plans, hooks, the loop; evaluation; TFF execution.
    ('privacy', 'secagg'),  # DP mechanisms, accounting, the ledger; secure aggregation.
    ('aggregators',),  # The layer stack (DP and secure sums among its layers).
    ('algorithms',),
    ('sections',),  # The settings, whose choices come from the registries above.
    ('settings',),
    ('flag_binding',),
    ('experiment', 'sweeps'),  # The assembly of a run; sweeps of runs.
)


def _unit(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT).parts
  return parts[0] if len(parts) > 1 else path.stem


def _imported(path: pathlib.Path) -> list[str]:
  """Dotted names of everything `path` imports, anywhere in it (relative ones resolved)."""
  names = []
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      names += [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        package = list(path.relative_to(ROOT.parent).with_suffix('').parts)[:-node.level]
        base = '.'.join(package + ([node.module] if node.module else []))
      names += [f'{base}.{alias.name}' for alias in node.names]
  return names


def _graph() -> tuple[dict, list[str]]:
  """({unit: {imported unit: [the modules that import it]}}, imports of launch)."""
  edges = collections.defaultdict(lambda: collections.defaultdict(list))
  launch = []
  for path in sorted(ROOT.rglob('*.py')):
    unit = _unit(path)
    for name in _imported(path):
      top, _, rest = name.partition('.')
      if top == 'launch':
        launch.append(f'{path.relative_to(ROOT.parent)} imports {name}')
      elif top == 'tff_experiments' and rest:
        other = rest.split('.')[0]
        if other != unit and ((ROOT / other).is_dir() or (ROOT / f'{other}.py').exists()):
          edges[unit][other].append(str(path.relative_to(ROOT.parent)))
  return edges, launch


def _cycles(edges) -> list[list[str]]:
  """The strongly connected components of more than one unit (Tarjan)."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in edges.get(v, ()):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        found.append(sorted(component))

  for v in list(edges):
    if v not in index:
      visit(v)
  return found


def _layer_of() -> dict[str, int]:
  return {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def test_every_unit_has_a_layer():
  units = {_unit(p) for p in ROOT.rglob('*.py')} - {'__init__'}
  assert sorted(units - set(_layer_of())) == []
  assert sorted(set(_layer_of()) - units) == []  # No stale entry either.


def test_no_import_points_up_or_across_a_layer():
  edges, _ = _graph()
  layer = _layer_of()
  wrong = [f'{unit} (layer {layer[unit]}) -> {other} (layer {layer[other]}): {", ".join(by)}'
           for unit, targets in sorted(edges.items()) for other, by in sorted(targets.items())
           if layer[other] >= layer[unit]]
  assert wrong == []


def test_no_cycle_between_subpackages():
  edges, _ = _graph()
  assert _cycles(edges) == []


def test_nothing_imports_launch():
  _, launch = _graph()
  assert launch == []


def test_a_cycle_and_a_lazy_import_are_seen(tmp_path, monkeypatch):
  """The checks fail when they should: an import inside a function counts, and a cycle of two
  units is found."""
  package = tmp_path / 'tff_experiments'
  (package / 'low').mkdir(parents=True)
  (package / 'low' / 'a.py').write_text('def f():\n  from tff_experiments.high import b\n')
  (package / 'high.py').write_text('from tff_experiments.low import a\nimport launch.x\n')
  monkeypatch.setattr(sys.modules[__name__], 'ROOT', package)
  edges, launch = _graph()
  assert {u: sorted(t) for u, t in edges.items()} == {'low': ['high'], 'high': ['low']}
  assert _cycles(edges) == [['high', 'low']]
  assert launch == ['tff_experiments/high.py imports launch.x']


if __name__ == '__main__':  # python tests/test_imports.py: the graph, layer by layer.
  graph, _ = _graph()
  for i, layer in enumerate(LAYERS):
    for name in layer:
      print(f'{i:>2} {name:<13} -> {", ".join(sorted(graph.get(name, {}))) or "(nothing)"}')
