"""Round plans: seeded cohorts, per-client seeds and step caps, drop-outs, skipped rounds."""

import numpy as np

from tff_experiments.runner import round_plan

_IDS = [f'c{i}' for i in range(50)]


def _planner(**kwargs):
  return round_plan.RoundPlanner(_IDS, **{'seed': 3, 'clients_per_round': 5, **kwargs})


def test_plans_are_functions_of_seed_and_round():
  a, b = _planner().plan(7), _planner().plan(7)
  assert a == b and len(set(a.sampled)) == 5 and set(a.sampled) <= set(_IDS)
  assert _planner().plan(8).sampled != a.sampled
  assert _planner(seed=4).plan(7).sampled != a.sampled
  assert _planner(seed=np.int64(3)).plan(7) == a  # numpy seeds are seeded, not ignored.
  assert len(set(a.shuffle_seeds.values())) == 5  # One stream per client.
  assert a.reporting == a.sampled and not a.dropped and not a.skipped


def test_tasks_carry_seeds_and_the_global_step_cap():
  plan = _planner(max_steps=4).plan(1)
  tasks = plan.tasks()
  assert [t['client_id'] for t in tasks] == list(plan.sampled)
  assert all(t['max_steps'] == 4 for t in tasks)
  assert [int(t['shuffle_seed']) for t in tasks] == [plan.shuffle_seeds[c] for c in plan.sampled]
  assert all(t['max_steps'] == -1 for t in _planner().plan(1).tasks())  # Uncapped.


def test_update_seeds_are_per_client_round_and_seed_and_replan_alike():
  def seeds_of(seed, round_num):
    return {t['client_id']: int(t['update_seed'])
            for t in _planner(seed=seed, clients_per_round=50).plan(round_num).tasks()}

  first = seeds_of(3, 1)
  assert first == seeds_of(3, 1)  # A resumed run replans the same seeds.
  assert len(set(first.values())) == 50  # One per client.
  assert not set(first.values()) & set(seeds_of(3, 2).values())  # Fresh every round,
  assert not set(first.values()) & set(seeds_of(4, 1).values())  # and with every seed.
  assert not set(first.values()) & {int(t['shuffle_seed'])  # Apart from the shuffles.
                                    for t in _planner(clients_per_round=50).plan(1).tasks()}


def test_adjustments_drop_and_cap_with_their_own_seeded_stream():
  def stragglers(plan, rng):
    slow = rng.choice(plan.sampled, size=2, replace=False)
    return plan.cap_steps({c: 1 for c in slow}).drop([plan.sampled[0]])

  plan = _planner(max_steps=4, adjustments=[('stragglers', stragglers)]).plan(2)
  assert plan == _planner(max_steps=4, adjustments=[('stragglers', stragglers)]).plan(2)
  assert plan.dropped == (plan.sampled[0],) and len(plan.reporting) == 4
  assert sorted(plan.step_caps.values()).count(1) >= 1
  assert plan.metrics() == {'plan/clients_sampled': 5, 'plan/clients_reporting': 4,
                            'plan/clients_dropped': 1}


def test_a_plan_where_nobody_reports_is_skipped():
  plan = _planner(adjustments=[('outage', lambda p, rng: p.drop(p.sampled))]).plan(1)
  assert plan.skipped and plan.tasks() == [] and len(plan.dropped) == 5


def test_client_dropout_drops_each_client_with_its_rate():
  planner = _planner(clients_per_round=10,
                     adjustments=[('client_dropout', round_plan.client_dropout(0.3))])
  plans = [planner.plan(r) for r in range(1, 301)]
  dropped = sum(len(p.dropped) for p in plans)
  # 3,000 independent draws at p = 0.3: within 5 standard deviations of 900.
  assert abs(dropped - 900) < 5 * (3000 * 0.3 * 0.7) ** 0.5
  assert plans[4] == planner.plan(5)  # Seeded by (seed, round).
  assert all(set(p.reporting) | set(p.dropped) == set(p.sampled) for p in plans)


def test_stragglers_drop_exactly_their_share_or_do_partial_work():
  drop = _planner(clients_per_round=10,
                  adjustments=[('stragglers', round_plan.stragglers(0.3, 'drop'))]).plan(4)
  assert len(drop.dropped) == 3 and len(drop.reporting) == 7 and not drop.step_fractions
  partial = _planner(clients_per_round=10,
                     adjustments=[('stragglers', round_plan.stragglers(0.3, 'partial'))])
  plan = partial.plan(4)
  assert not plan.dropped and len(plan.step_fractions) == 3
  assert all(0 < u <= 1 for u in plan.step_fractions.values())
  assert plan == partial.plan(4) and plan.step_fractions != partial.plan(5).step_fractions
  tasks = {t['client_id']: t for t in plan.tasks()}
  assert sorted(c for c, t in tasks.items() if t['step_fraction'] < 1) == sorted(
      plan.step_fractions)


def test_poisson_sampling_includes_each_client_with_its_rate():
  cohorts = [_planner(clients_per_round=10, sampler='poisson').plan(r).sampled
             for r in range(1, 401)]
  again = _planner(clients_per_round=10, sampler='poisson')
  assert cohorts[:5] == [again.plan(r).sampled for r in range(1, 6)]  # Seeded.
  sizes = np.array([len(c) for c in cohorts])
  # Binomial(50, 0.2) sizes: mean 10 (se 2.83/sqrt(400) = 0.14), and they vary.
  assert abs(sizes.mean() - 10) < 0.6 and sizes.std() > 2
  joined = np.mean([['c7' in c for c in cohorts]])
  assert abs(joined - 0.2) < 4 * np.sqrt(0.2 * 0.8 / 400)
