# gnuplot weights/logs/full-floor-2026-12-05/curves.gp (from the repository
# root): validation loss (nats/token, first 65,536 tokens of valid.txt)
# against training tokens, and the learning rate: the shipped run (cosine
# decay to 1e-4) and the run whose decay ends at 5e-4, both seed 2 with the
# weight average (EMA 0.998 per update, an update every 4 steps); each
# run's raw parameters and their average. Both runs: 100 minutes on 2
# data-parallel shards of the same 2-core AMD VM, batch 8 x 256.
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/full-floor-2026-12-05/curves.png'
set datafile separator ','
set multiplot layout 1,2
set xlabel 'training tokens (millions)'
set ylabel 'valid loss'
set grid
set key top right
set title 'the last 20M tokens'
set yrange [3.55:3.85]
set xrange [14:37]
plot 'weights/logs/full-ema-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):3 with lines lw 2 dt 2 lc 1 title 'floor 1e-4 (shipped): parameters', \
     'weights/logs/full-ema-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):7 with lines lw 2 lc 1 title 'floor 1e-4 (shipped): average', \
     'weights/logs/full-floor-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):3 with lines lw 2 dt 2 lc 2 title 'floor 5e-4: parameters', \
     'weights/logs/full-floor-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):7 with lines lw 2 lc 2 title 'floor 5e-4: average'
set title 'learning rate'
set ylabel 'lr'
set autoscale y
set xrange [0:37]
set key top right
plot 'weights/logs/full-ema-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):4 with lines lw 2 lc 1 title 'floor 1e-4', \
     'weights/logs/full-floor-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):4 with lines lw 2 lc 2 title 'floor 5e-4'
unset multiplot
