# gnuplot weights/logs/full-ema-2026-12-05/curves.gp (from the repository
# root): validation loss (nats/token, first 65,536 tokens of valid.txt)
# against training tokens: the shipped run (seed 1), and the weight-averaging
# run (seed 2, otherwise the same recipe): its raw parameters and their
# average (EMA 0.998 per update, an update every 4 steps), both scored at
# every evaluation. Both runs: 100 minutes on 2 data-parallel shards of the
# same 2-core AMD VM, batch 8 x 256.
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/full-ema-2026-12-05/curves.png'
set datafile separator ','
set multiplot layout 1,2
set xlabel 'training tokens (millions)'
set ylabel 'valid loss'
set grid
set key top right
set title 'validation loss, whole runs'
set yrange [3.4:5.0]
plot 'weights/logs/full-lr25-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):3 with lines lw 2 title 'shipped (seed 1)', \
     'weights/logs/full-ema-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):3 with lines lw 2 title 'seed 2, parameters', \
     'weights/logs/full-ema-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):7 with lines lw 2 title 'seed 2, their average'
set title 'the last 20M tokens'
set yrange [3.55:3.85]
set xrange [14:37]
replot
unset multiplot
