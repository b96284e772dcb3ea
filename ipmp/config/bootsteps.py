"""One interface's boot as Solaris ran it: one ``ifconfig`` command per line.

network/physical plumbs each interface, then hands every line of its
hostname file to ``ifconfig`` on its own (net_include.sh
``inet_process_hostname``: ``$* $ifcmds || retval=$?`` for each line;
``inet6_process_hostname`` the same for ``hostname6.<if>``).  A line that
fails is remembered for the exit status and the console, and the next line
runs all the same: a bad line costs that line only, never the lines before
or after it.  Here each line stays all or nothing (``evaluate`` either
returns the whole line's result or raises), and:

* a line that does not parse, or that ``evaluate`` refuses, is left out;
* a file whose implicit ``plumb`` fails is not processed (net-physical
  runs the lines only for the interfaces in ``inet_plumbed``);
* an IPv6 file with a failed line does not get its final ``inet6 up``
  (net-physical: ``inet6_process_hostname ... && ifconfig IF inet6 up``);
* a line whose change the kernel refuses is found (``refused_step``) and
  left out too, and the rest applied again.

Pure module: the files are read by the caller (``session``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from ipmp.config.commands import Command
from ipmp.config.evaluate import evaluate, reset_interface
from ipmp.errors import ConfigError, IpmpError, ParseError, Position
from ipmp.model import Config, Environment, Family, Interface, Logical

#: What a step is: the implicit ``plumb`` of a file, one of its lines, or
#: the implicit ``inet6 up`` that ends an IPv6 file.
PLUMB, LINE, UP = "plumb", "line", "up"


@dataclass(frozen=True)
class Step:
    """One ``ifconfig`` command of an interface's boot.

    ``error`` is set when the line cannot be run at all (it does not parse,
    or its file cannot be read); ``command`` is then None.
    """

    kind: str
    family: Family
    position: Position
    #: Which file of the interface it comes from (its index in boot order).
    file: int
    command: Command | None
    error: Exception | None = None


@dataclass(frozen=True)
class Failed:
    """A step that failed, and why."""

    step: Step
    error: Exception

    @property
    def message(self) -> str:
        """``FILE:LINE:COL: message`` (``FILE: message`` for an unreadable file)."""
        err = self.error
        if isinstance(err, OSError) and not isinstance(err, IpmpError):
            # An unreadable file: a position would only repeat its name.
            return f"{self.step.position.source}: {err.strerror or err}"
        # In a file the position says where; the program name adds nothing.
        message = str(getattr(err, "message", None) or err).removeprefix("ifconfig: ")
        pos = getattr(err, "position", None)
        if not (isinstance(pos, Position) and pos.source):
            pos = self.step.position
        return f"{pos}: {message}"


@dataclass(frozen=True)
class Evaluation:
    """The steps of one interface run over a configuration."""

    #: After every step that worked.
    config: Config
    #: The steps that failed, in order.
    failed: tuple[Failed, ...]
    #: ``(index of the step, configuration after it)`` for each step that worked.
    after: tuple[tuple[int, Config], ...]


def run_steps(
    start: Config,
    steps: Sequence[Step],
    env: Environment,
    refused: Mapping[int, Exception] | None = None,
) -> Evaluation:
    """Run one interface's ``steps`` over ``start`` as the boot script runs the lines.

    ``start`` is taken as given (``boot_start`` gives the clean slate a
    boot starts from).  ``refused``: steps the kernel would not take, by
    index, with the kernel's error; they count as failed lines.
    """
    refused = refused or {}
    config = start
    failed: list[Failed] = []
    after: list[tuple[int, Config]] = []
    failed_files: set[int] = set()
    unplumbed: set[int] = set()
    for index, step in enumerate(steps):
        if step.file in unplumbed:
            continue  # not in inet_plumbed: its lines are never run
        if step.kind == UP and step.file in failed_files:
            continue  # inet6_process_hostname ... && ifconfig IF inet6 up
        error: Exception | None = refused.get(index) or step.error
        if error is None:
            assert step.command is not None
            try:
                config = evaluate(config, step.command, env).config
            except (ParseError, ConfigError) as err:
                error = err
        if error is not None:
            failed.append(Failed(step, error))
            failed_files.add(step.file)
            if step.kind == PLUMB:
                unplumbed.add(step.file)
            continue
        after.append((index, config))
    return Evaluation(config, tuple(failed), tuple(after))


def boot_start(current: Config, ifname: str) -> Config:
    """``current`` with ``ifname`` as boot finds it (``reset_interface``)."""
    itf = current.get(ifname)
    if itf is None:
        raise ConfigError(f"plumb: {ifname}: no such interface")
    return current.with_interface(reset_interface(itf))


def leave_held_elsewhere(config: Config, ifname: str) -> Config:
    """Data addresses of ``ifname`` that another NIC holds for it stay there.

    They were failed over, or rescued at boot (§6.5), and carry ``ifname`` as
    their home: in.mpathd gives them back once ``ifname`` runs in the group
    (§2.7 invariant 3).  Adding them here too would put one address on two
    NICs.  Unit 0 keeps the placeholder a failover leaves (0.0.0.0, §1).
    """
    itf = config.get(ifname)
    assert itf is not None
    held = {(lg.family, lg.address.ip) for other in config.interfaces if other.name != ifname
            for lg in other.logicals if lg.home == ifname and lg.address is not None}
    for lg in itf.logicals:
        if (lg.address is not None and lg.is_data and lg.home in ("", ifname)
                and (lg.family, lg.address.ip) in held):
            itf = (itf.with_logical(Logical(lg.family, 0, None, deprecated=lg.deprecated, nofailover=True))
                   if lg.unit == 0 else itf.without_logical(lg.family, lg.unit))
    return config.with_interface(itf)


def keep_on_failure(desired: Config, before: Interface, families: frozenset[Family]) -> Config:
    """A failed line takes nothing away: what the lines that worked do not set stays.

    The boot starts from a clean slate so that running it again brings a
    host back to its files.  With a line failing, that slate would drop
    whatever only the failed line described: edit a configured host's file,
    mistype a line, run ``ipmp-boot``, and the line's data address would go
    off the network.  So, for an interface with a failed line (at boot
    nothing is configured yet and this changes nothing):

    * every address ``before`` holds in ``families`` (its own, not one
      failed over to it) that the working lines do not set stays, with its
      flags, on its unit, or on a free one if a working line took that unit;
    * group, standby and metric that no working line set keep their values.
    """
    itf = desired.get(before.name)
    assert itf is not None
    slate = reset_interface(before)
    itf = replace(itf,
                  group=before.group if itf.group == slate.group else itf.group,
                  standby=before.standby if itf.standby == slate.standby else itf.standby,
                  metric=before.metric if itf.metric == slate.metric else itf.metric)
    for lg in before.logicals:
        if (lg.family not in families or lg.kernel_owned or lg.address is None
                or lg.home not in ("", before.name)):
            continue
        if any(o.address is not None and o.address.ip == lg.address.ip for o in itf.logicals_of(lg.family)):
            continue
        taken = itf.logical(lg.family, lg.unit)
        unit = lg.unit if taken is None or (taken.address is None and not taken.kernel_owned) \
            else itf.free_unit(lg.family)
        itf = replace(itf.with_logical(replace(lg, unit=unit)),
                      plumbed=itf.plumbed | {lg.family}, link_up=itf.link_up or before.link_up)
    return desired.with_interface(itf)


def refused_step(
    evaluation: Evaluation, steps: Sequence[Step], is_refused: Callable[[Config], bool]
) -> int | None:
    """The line whose change the kernel refused, or None when no single line made it.

    ``is_refused(config)`` says whether planning ``config`` against the
    kernel as it was gives the operation the kernel refused.  The line is
    the first whose configuration (with those before it) does: the lines
    before it did not ask for that operation, it did.  An implicit
    ``plumb`` is no line to leave out: then the interface fails as a whole.
    """
    for index, config in evaluation.after:
        if is_refused(config):
            return None if steps[index].kind == PLUMB else index
    return None
