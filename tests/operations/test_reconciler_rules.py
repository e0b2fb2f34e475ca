"""The reconciler's rules are one table in code (``operations.reconciler.RULES``, the rules on
messages from ``messaging.sweeps.RULES``): a pass runs exactly what the rendered table lists, in
its order, and the table says where each threshold is set. No database: the rules are data."""

from operations import reconciler
from operations.reconciler import reconcile, rules_markdown


def test_the_rendered_table_lists_every_rule_a_pass_runs_in_its_order(monkeypatch):
    ran = []

    def spy(self, *, now):
        ran.append((self.name, self.function))
        return {}

    monkeypatch.setattr(reconciler.Rule, "run", spy)
    assert reconcile() == {}
    rows = [line.split(" | ") for line in rules_markdown().splitlines()[2:]]
    listed = [(cells[0].removeprefix("| "), cells[-1].strip(" |`")) for cells in rows]
    assert listed == ran and len(ran) == len(reconciler.RULES) >= 11
    for _, dotted in ran:  # each names a real function
        module, _, name = dotted.rpartition(".")
        assert callable(getattr(__import__(module, fromlist=[name]), name))


def test_the_table_says_where_each_threshold_is_set_and_its_value(settings):
    settings.WAYPOST_REDRIVE_AFTER = 120
    table = rules_markdown()
    assert "the tenant's stall_accepted_seconds (default 15 min)" in table
    assert "setting WAYPOST_REDRIVE_AFTER (2 min)" in table
    assert "1 h, fixed: Meta releases or drops a held message within the hour" in table
