svccfg -s svc:/network/ipmp setprop config/transitive-probing=false
svcadm refresh svc:/network/ipmp:default
ipadm delete-ipmp -f ipmp0
ipadm delete-ip net0
ipadm delete-ip net1
