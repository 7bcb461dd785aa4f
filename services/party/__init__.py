"""The party service (党建): Party organisations and their tree, the regional council, units'
双报到 and the three lists, members' 双重管理 and organisational life."""
