"""The README's sweep/compare table and figure are what `make docs-figures` made: the block
between its markers is re-derived from the committed runs table and provenance, the README shows
the commands the script runs, the figure is the one the script recorded, and the numbers and
the README's words on them hold (numpy as the reference)."""

import json
import re
import shlex

import numpy as np

from bench import docs_figures


def _readme() -> str:
  with open(docs_figures.README, encoding='utf-8') as f:
    return f.read()


def _provenance() -> dict:
  with open(docs_figures.PROVENANCE, encoding='utf-8') as f:
    return json.load(f)


def test_the_readme_block_is_the_committed_results():
  text = _readme()
  block = text[text.index(docs_figures.BEGIN):text.index(docs_figures.END)
               + len(docs_figures.END)]
  assert block == docs_figures.readme_block(docs_figures.read_runs(), _provenance())


def test_the_readme_shows_the_commands_the_script_runs():
  commands = re.search(r'```bash\n(\.venv/bin/python -m launch\.sweep.*?)```', _readme(),
                       re.S).group(1).replace('\\\n', ' ')
  sweep, compare = [shlex.split(line) for line in commands.strip().splitlines()]
  assert sweep[3:] == list(docs_figures.SWEEP_ARGS)
  assert sweep[1:3] == ['-m', 'launch.sweep'] and compare[1:3] == ['-m', 'launch.compare']
  assert compare[3] == f'results/{docs_figures.SWEEP_NAME}'
  assert set(docs_figures.COMPARE_ARGS) <= set(compare[4:])
  made = _provenance()
  assert made['sweep'][3:] == ['--parallel=1', *docs_figures.SWEEP_ARGS]
  assert made['compare'][3:] == [f'results/{docs_figures.SWEEP_NAME}',
                                 *docs_figures.COMPARE_ARGS]


def test_the_figure_is_the_one_the_script_made():
  assert docs_figures.sha256(docs_figures.FIGURE) == _provenance()['figure_sha256']


def test_the_table_numbers_and_the_readmes_words_on_them():
  runs = docs_figures.read_runs()
  assert len(runs) == 12 and set(runs['status']) == {'completed'}
  assert (runs['rounds'] == 10).all()
  text = _readme()
  for (lr, optimizer), group in runs.groupby(['client_learning_rate', 'server_optimizer']):
    final = group['final_accuracy'].to_numpy()
    cell = f'{np.mean(final):.4f} ± {np.std(final, ddof=1):.4f}'
    assert re.search(rf'^\| {lr:g} \| {optimizer} \| 3 \| 3 completed \| 10 ± 0 \| {cell} \|',
                     text, re.M), (lr, optimizer, cell)
  # The README's words after the block: Adam's best round of any run is below SGD's (lr 0.2)
  # final accuracy in every run, and 5 of its 6 runs had their best before round 10.
  adam = runs[runs['server_optimizer'] == 'adam']
  sgd = runs[(runs['server_optimizer'] == 'sgd') & (runs['client_learning_rate'] == 0.2)]
  assert adam['best_accuracy'].max() < sgd['final_accuracy'].min()
  assert (adam['best_accuracy'] > adam['final_accuracy']).sum() == 5
  assert 'in 5 of its 6 runs the best accuracy\ncomes before round 10' in text
