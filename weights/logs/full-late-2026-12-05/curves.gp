# gnuplot weights/logs/full-late-2026-12-05/curves.gp (from the repository
# root): validation loss (nats/token, first 65,536 tokens of valid.txt)
# against training tokens: the shipped run (dropout 0.1 throughout) and the
# late-dropout run (no dropout for the first 40% of the schedule, 0.1
# after), otherwise the same recipe, both 100 minutes on 2 data-parallel
# shards of the same 2-core AMD VM, batch 8 x 256.
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/full-late-2026-12-05/curves.png'
set datafile separator ','
set multiplot layout 1,2
set xlabel 'training tokens (millions)'
set ylabel 'valid loss'
set grid
set key top right
set title 'validation loss, whole runs'
set yrange [3.4:5.0]
plot 'weights/logs/full-lr25-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.3 title 'dropout 0.1 throughout (shipped)', \
     'weights/logs/full-late-2026-12-05/train.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.3 title 'late dropout (from 40%)'
set title 'the last 20M tokens'
set yrange [3.55:3.85]
set xrange [14:37]
replot
unset multiplot
