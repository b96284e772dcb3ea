ipadm create-ip net0
ipadm create-ip net1
ipadm create-ipmp -i net0,net1 ipmp0
ipadm create-addr -T static -a 192.0.2.10/24 ipmp0
ipadm create-addr -T static -a 192.0.2.11/24 ipmp0
ipadm show-if -p -o ifname,class,over
ipadm show-addr
ipmpstat -g
ipmpstat -an
