ipadm create-ip net0
ipadm create-ip net1
ipadm create-ipmp -i net0,net1 ipmp0
ipadm create-addr -T static -a 192.0.2.10/24 ipmp0
ipadm create-addr -T static -a 192.0.2.20/24 net0
ipadm create-addr -T static -a 192.0.2.21/24 net1
ipmpstat -t
