"""in.mpathd's SIGUSR1 report: its tables at LOG_DEBUG, then probe statistics at LOG_ERR.

Solaris (``mpd_main.c`` ``in_signal``, spec §2.10) logs
"Printing configuration:" and every phyint instance (``phyint_inst_print``)
at LOG_DEBUG, then at LOG_ERR the probes it missed sending because it was
late, and per phyint instance a "Probe stats on (inet hme0)" block.

Decisions [INF]:

* The LOG_ERR lines keep the Solaris texts, since log watchers match them;
  the block Solaris logs as one message with embedded newlines is logged
  one line per message here (a syslog line with newlines reaches rsyslog
  as ``#012`` and the journal as one entry a ``grep`` cannot split), and
  its leading blank line is left out.
* The LOG_DEBUG tables keep the Solaris headings ("Phyint instance:",
  "Target on ... addr ...", "deferred rtts:") but show what this daemon
  has: state and status names instead of the C enum numbers, and no
  socket descriptors, interface flags or ``in_use`` marks.
* "Number of probes sent" counts failure-detection probes, as Solaris's
  ``pii_cum_stats.sent`` does; "acks received" and "lost" include the
  probes still in the window, and "valid unacknowledged" is the probes
  still waiting for a reply — the sums ``in_signal`` makes.
* The missed probes are summed over the instances there are now; Solaris
  keeps one global count, which also remembers the NICs it stopped tracking.

Pure module: no I/O.
"""

from __future__ import annotations

from ipmp.model import Family
from ipmp.mpathd.machine import Machine
from ipmp.mpathd.phyint import Phyint
from ipmp.mpathd.probe import Instance, SlotStatus, Target
from ipmp.mpathd.steps import Log

__all__ = ["report"]

#: ``AF_STR``: the family words of the Solaris messages.
AF_STR = {Family.INET: "inet", Family.INET6: "inet6"}


def _instances(machine: Machine) -> list[tuple[Phyint, Family, Instance]]:
    """Every phyint instance, IPv4 before IPv6 for each NIC, in the order the NICs are tracked."""
    return [(pi, family, pi.instances[family])
            for pi in machine.phyints.values()
            for family in (Family.INET, Family.INET6) if family in pi.instances]


def _target_lines(pi: Phyint, family: Family, t: Target) -> list[str]:
    crtt = t.crtt_ms
    return [
        f"Target on {AF_STR[family]} {pi.name} addr {t.address}",
        f"status {t.status.value} rtt_sa {t.sa} rtt_sd {t.sd} crtt {crtt if crtt is not None else -1} "
        f"router {'yes' if t.is_router else 'no'}",
        "deferred rtts:" + "".join(f" {m}ms" for m in t.deferred_samples),
    ]


def _table_lines(machine: Machine, pi: Phyint, family: Family, inst: Instance) -> list[str]:
    group = machine.groups.get(pi.group)
    lines = [
        f"Phyint instance: {AF_STR[family]} {pi.name} state {machine.reported_state(pi.name)} "
        f"group {pi.group or '(none)'} link {'up' if pi.link_up else 'down'}",
        f"test address {inst.test_address}",
    ]
    if group is not None:
        lines.append(f"failure detection time {group.fdt_ms} ms, group {'failed' if group.failed else 'ok'}")
    for t in inst.targets:
        lines += _target_lines(pi, family, t)
    if not inst.targets:
        lines.append("pi_targets NULL")
    return lines


def report(machine: Machine) -> list[Log]:
    """The lines in.mpathd logs on SIGUSR1, in the order Solaris logs them."""
    instances = _instances(machine)
    out = [Log("debug", "Printing configuration:")]
    for pi, family, inst in instances:
        out += [Log("debug", line) for line in _table_lines(machine, pi, family, inst)]
    missed = sum(inst.missed_total for _, _, inst in instances)
    times = sum(inst.missed_times for _, _, inst in instances)
    out.append(Log("err", f"Missed sending total of {missed} probes spread over {times} occurrences"))
    for pi, family, inst in instances:
        unacked = sum(1 for slot in inst.history.values() if slot.status is SlotStatus.UNACKED)
        out += [Log("err", line) for line in (
            f"Probe stats on ({AF_STR[family]} {pi.name})",
            f"Number of probes sent {inst.sent_total}",
            f"Number of probe acks received {inst.acked_total}",
            f"Number of probes/acks lost {inst.lost_total}",
            f"Number of valid unacknowledged probes {unacked}",
            f"Number of ambiguous probe acks received {inst.ambiguous_total}",
        )]
    return out
