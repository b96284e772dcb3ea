import ipmp.mpathd.machine as m
orig = m.failover.choose_destination
def cd(config, source, *, usable, emptying_standby=False):
    return orig(config, source, usable=lambda n: True, emptying_standby=emptying_standby)
m.failover.choose_destination = cd
