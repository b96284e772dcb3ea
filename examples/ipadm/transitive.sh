ipadm create-ip net0
ipadm create-ip net1
ipadm create-ipmp -i net0,net1 ipmp0
ipadm create-addr -T static -a 192.0.2.10/24 ipmp0
svccfg -s svc:/network/ipmp setprop config/transitive-probing=true
svcadm refresh svc:/network/ipmp:default
svcprop -p config/transitive-probing svc:/network/ipmp
ipmpstat -t
