# gnuplot weights/logs/full-vanilla-2026-12-06/curves.gp (from the repository
# root): validation loss (nats/token, first 65,536 tokens of valid.txt)
# against training tokens (batch 8 x 256 = 2,048 per step in every run).
# Budget B (both cores, 100 minutes, the shipped recipe with the weight
# average, seed 2), the three variants that share it: the shipped random
# model, the random+vanilla mixture and the vanilla baseline; the average
# (solid) and, on the right, each run's raw parameters (dashed). Budget A
# (one core, 95 minutes, the old recipe, seed 1): the vanilla baseline
# before (its raw parameters; that recipe had no average).
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/full-vanilla-2026-12-06/curves.png'
set datafile separator ','
set multiplot layout 1,2
set xlabel 'training tokens (millions)'
set ylabel 'valid loss'
set grid
set key top right
set title 'whole runs'
set yrange [3.4:5.0]
set xrange [0:37]
plot 'weights/logs/full-ema-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):7 with lines lw 2 lc 1 title 'random, budget B (shipped): average', \
     'weights/logs/full-mix-2026-12-06/train.csv' every ::1 using ($1*2048/1e6):7 with lines lw 2 lc 2 title 'random+vanilla, budget B: average', \
     'weights/logs/full-vanilla-2026-12-06/train.csv' every ::1 using ($1*2048/1e6):7 with lines lw 2 lc 4 title 'vanilla, budget B: average', \
     'weights/logs/synthesizer-wt2-vanilla-train.csv' every ::1 using ($1*2048/1e6):3 with lines lw 2 lc 3 title 'vanilla, budget A'
set title 'the last 20M tokens'
set yrange [3.45:3.8]
set xrange [14:37]
plot 'weights/logs/full-ema-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):3 with lines lw 2 dt 2 lc 1 title 'random B: parameters', \
     'weights/logs/full-ema-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):7 with lines lw 2 lc 1 title 'random B: average', \
     'weights/logs/full-mix-2026-12-06/train.csv' every ::1 using ($1*2048/1e6):3 with lines lw 2 dt 2 lc 2 title 'mixture B: parameters', \
     'weights/logs/full-mix-2026-12-06/train.csv' every ::1 using ($1*2048/1e6):7 with lines lw 2 lc 2 title 'mixture B: average', \
     'weights/logs/full-vanilla-2026-12-06/train.csv' every ::1 using ($1*2048/1e6):3 with lines lw 2 dt 2 lc 4 title 'vanilla B: parameters', \
     'weights/logs/full-vanilla-2026-12-06/train.csv' every ::1 using ($1*2048/1e6):7 with lines lw 2 lc 4 title 'vanilla B: average', \
     'weights/logs/synthesizer-wt2-vanilla-train.csv' every ::1 using ($1*2048/1e6):3 with lines lw 2 lc 3 title 'vanilla A: parameters (no average)'
unset multiplot
