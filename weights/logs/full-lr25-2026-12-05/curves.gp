# gnuplot weights/logs/full-lr25-2026-12-05/curves.gp (from the repository
# root): validation loss (nats/token, first 65,536 tokens of valid.txt)
# against training tokens: the shipped run (peak learning rate 0.0015,
# weight decay 0.3, session 9) and the session-12 run (peak 0.0025, R's
# rate kept at 0.045), both 100 minutes on 2 data-parallel shards of the
# same 2-core AMD VM, batch 8 x 256.
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/full-lr25-2026-12-05/curves.png'
set datafile separator ','
set multiplot layout 1,2
set xlabel 'training tokens (millions)'
set ylabel 'valid loss'
set grid
set key top right
set title 'validation loss, whole runs'
set yrange [3.4:5.0]
plot 'weights/logs/full-wd03-2026-12-04/train.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.3 title 'peak lr 0.0015 (shipped)', \
     'weights/logs/full-lr25-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.3 title 'peak lr 0.0025'
set title 'the last 20M tokens'
set yrange [3.55:3.85]
set xrange [14:36]
replot
unset multiplot
