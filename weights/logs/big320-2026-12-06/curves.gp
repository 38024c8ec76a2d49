# gnuplot weights/logs/big320-2026-12-06/curves.gp (from the repository
# root): validation loss (nats/token, first 65,536 tokens of valid.txt) of
# complete cosines of the shipped recipe, seed 2: d 256 x 6 at 5,000 and
# 8,433 steps (the budget study's s5000 and s8433) and d 320 x 6 with
# dropout 0.15 at 6,009 steps (this run). Left: against tokens seen;
# right: against compute, in d 256 token-equivalents (a d 320 token costs
# 1/0.7125 of a d 256 one on this machine, bench-shapes.txt), so s8433 and
# this run end at the same compute.
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/big320-2026-12-06/curves.png'
set datafile separator ','
set multiplot layout 1,2
set grid
set key top right
set ylabel 'valid loss'
set yrange [3.6:5.0]
s5 = 'weights/logs/budget-2026-12-06/s5000/train.csv'
s8 = 'weights/logs/budget-2026-12-06/s8433/train.csv'
run = 'weights/logs/big320-2026-12-06/train.csv'
tok(s) = s * 2048 / 1e6
set xlabel 'tokens (M)'
set xrange [0:18]
set title 'validation loss against tokens'
plot s5 every ::1 using (tok($1)):3 with lines lw 1 dt 2 lc 3 title 'd 256, 5,000 steps: parameters', \
     s8 every ::1 using (tok($1)):3 with lines lw 1 dt 2 lc 1 title 'd 256, 8,433 steps: parameters', \
     s8 every ::1 using (tok($1)):7 with lines lw 2 lc 1 title 'd 256, 8,433 steps: average', \
     run every ::1 using (tok($1)):3 with lines lw 1 dt 2 lc 2 title 'd 320 dropout 0.15, 6,009 steps: parameters', \
     run every ::1 using (tok($1)):7 with lines lw 2 lc 2 title 'd 320 dropout 0.15, 6,009 steps: average'
set xlabel 'compute (M d 256 token-equivalents)'
set title 'validation loss against compute'
plot s5 every ::1 using (tok($1)):3 with lines lw 1 dt 2 lc 3 title 'd 256, 5,000 steps: parameters', \
     s8 every ::1 using (tok($1)):3 with lines lw 1 dt 2 lc 1 title 'd 256, 8,433 steps: parameters', \
     s8 every ::1 using (tok($1)):7 with lines lw 2 lc 1 title 'd 256, 8,433 steps: average', \
     run every ::1 using (tok($1)/0.7125):3 with lines lw 1 dt 2 lc 2 title 'd 320: parameters', \
     run every ::1 using (tok($1)/0.7125):7 with lines lw 2 lc 2 title 'd 320: average'
unset multiplot
