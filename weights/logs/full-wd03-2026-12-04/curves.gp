# gnuplot weights/logs/full-wd03-2026-12-04/curves.gp (from the repository
# root): validation loss (nats/token, first 65,536 tokens of valid.txt)
# against training tokens: the shipped recipe (weight decay 0.1, session 5,
# 2-core Intel VM) and the session-9 run (weight decay 0.3, 2-core AMD VM),
# both 100 minutes on 2 data-parallel shards.
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/full-wd03-2026-12-04/curves.png'
set datafile separator ','
set multiplot layout 1,2
set xlabel 'training tokens (millions)'
set ylabel 'valid loss'
set grid
set key top right
set title 'validation loss, whole runs'
set yrange [3.4:5.0]
plot 'weights/logs/full-dp-2026-12-04/train.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.3 title 'weight decay 0.1 (shipped recipe)', \
     'weights/logs/full-wd03-2026-12-04/train.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.3 title 'weight decay 0.3'
set title 'the last 20M tokens'
set yrange [3.5:3.85]
set xrange [14:36]
replot
unset multiplot
