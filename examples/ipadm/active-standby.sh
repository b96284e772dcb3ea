ipadm create-ip net0
ipadm create-ip net1
ipadm create-ip net2
ipadm create-ipmp ipmp0
ipadm add-ipmp -i net0 -i net1 -i net2 ipmp0
ipadm set-ifprop -p standby=on -m ip net2
ipadm create-addr -T static -a 192.0.2.10/24 ipmp0
ipadm show-ifprop -p standby -m ip net2
ipmpstat -i
