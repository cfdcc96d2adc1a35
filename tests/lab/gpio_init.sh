#!/bin/sh
# Guest init (from the lab's init-gpio.sh): a simulated 32-line gpiochip (gpio-sim) with line 17
# named GPIO17, pulled up; then the input_gpio_sim test binary, which presses the "button" by
# writing pull-down/pull-up to $SIM (the line's pull file). Prints guest-exit=N, powers off.
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
modprobe configfs; modprobe gpio-sim-oot && echo "gpio-sim loaded"
mount -t configfs none /sys/kernel/config
G=/sys/kernel/config/gpio-sim/frame; mkdir $G $G/bank0
echo 32 > $G/bank0/num_lines; mkdir $G/bank0/line17; echo GPIO17 > $G/bank0/line17/name; echo 1 > $G/live
export SIM=/sys/devices/platform/$(cat $G/dev_name)/$(cat $G/bank0/chip_name)/sim_gpio17/pull
echo pull-up > $SIM
ls -la /dev/gpiochip*; echo "SIM=$SIM"
export RUST_LOG=${RUST_LOG:-debug} RUST_BACKTRACE=1
if [ -x /opt/input_gpio_sim ]; then
  /opt/input_gpio_sim --ignored --exact --nocapture --test-threads=1 gpio_sim_button_presses_become_commands
  echo "guest-exit=$?"
else
  echo "guest-exit=127 (no /opt/input_gpio_sim)"
fi
poweroff -f
