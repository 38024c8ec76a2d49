# gnuplot weights/logs/grid-2026-12-04/curves.gp (from the repository root):
# validation loss (nats/token, first 65,536 tokens of valid.txt) of the four
# grid runs (weights/grid.sh: 38 minutes of one core each, two at a time),
# against training tokens (2,048 per step in every run) and against
# minutes, with the first 38 minutes of the shipped 100-minute run on both
# cores for scale (its tokens came twice as fast).
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/grid-2026-12-04/curves.png'
set datafile separator ','
set multiplot layout 1,2
set ylabel 'valid loss'
set grid
set key top right
g = 'weights/logs/grid-2026-12-04/'
set title 'against training tokens'
set xlabel 'training tokens (millions)'
set yrange [3.6:4.6]
plot g.'base.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.3 title 'base: d 256 x 6, dropout 0.1', \
     g.'wide.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.3 title 'wide: d 384 x 4, dropout 0.15', \
     g.'ctx512.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.3 title 'context 512', \
     g.'wd03.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.3 title 'weight decay 0.3', \
     'weights/logs/full-dp-2026-12-04/train.csv' every ::1 using ($1*2048/1e6):3 with lines dt 2 title 'shipped run (2 cores, 100 min)'
set title 'against minutes of one core'
set xlabel 'minutes'
set xrange [0:40]
plot g.'base.csv' every ::1 using ($6/60):3 with linespoints pt 7 ps 0.3 title 'base', \
     g.'wide.csv' every ::1 using ($6/60):3 with linespoints pt 7 ps 0.3 title 'wide', \
     g.'ctx512.csv' every ::1 using ($6/60):3 with linespoints pt 7 ps 0.3 title 'context 512', \
     g.'wd03.csv' every ::1 using ($6/60):3 with linespoints pt 7 ps 0.3 title 'weight decay 0.3'
unset multiplot
